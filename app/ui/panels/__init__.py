"""One module per dashboard panel: each renders a loader record; none builds SQL."""
