"""Who is signed in, through app/ui/auth.py: the sign-in screen until someone is."""

import streamlit as st

from jobdash.app.ui.auth import identity_badge, require_identity

identity = require_identity()
st.text(f"IDENTITY: {identity.name} ROLE: {identity.role} SOURCE: {identity.source}")
identity_badge(identity)
