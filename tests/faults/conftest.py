"""The fault suite (issue 15): faults the tests inflict on a PostgreSQL they control, each test
asserting on the database afterwards. Shared helpers are in tests/faults/helpers.py."""

from tests.streamlit_process import streamlit_server as streamlit_server
