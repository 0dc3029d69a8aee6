"""Tests of the HTTP side against a real `streamlit run` of the dashboard (no browser)."""

from tests.streamlit_process import streamlit_server as streamlit_server
