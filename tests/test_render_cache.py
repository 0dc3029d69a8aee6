"""RenderCache: one build per data version and key, shared; rebuilt for new data."""

from __future__ import annotations

from jobdash.app.ui.render_cache import RenderCache


class Data:
    """Loaded data stand-in (the SharedCache hands sessions the same object)."""


def test_builds_once_per_data_object_and_key() -> None:
    cache = RenderCache()
    builds: list[str] = []

    def build(name: str):
        return lambda: builds.append(name) or name

    first, second = Data(), Data()
    assert cache.get("panel", first, "UTC", build("a")) == "a"
    assert cache.get("panel", first, "UTC", build("again")) == "a"  # shared, not rebuilt
    assert cache.get("panel", first, "Europe/Berlin", build("b")) == "b"  # another key
    assert cache.get("panel", second, "UTC", build("c")) == "c"  # new data: rebuilt
    assert cache.get("other", first, "UTC", build("d")) == "d"  # another kind of build
    assert builds == ["a", "b", "c", "d"]


def test_keeps_at_most_max_entries() -> None:
    cache = RenderCache(max_entries=2)
    items = [Data() for _ in range(3)]
    for index, item in enumerate(items):
        cache.get("panel", item, None, lambda index=index: index)
    # The oldest went: asking again builds anew.
    assert cache.get("panel", items[0], None, lambda: "rebuilt") == "rebuilt"
    assert cache.get("panel", items[2], None, lambda: "rebuilt") == 2
