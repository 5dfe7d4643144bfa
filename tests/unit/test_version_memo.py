"""VersionMemo: computed once per (uid, resourceVersion); unversioned objects every time."""

from types import SimpleNamespace

from sextant.store.version_memo import VersionMemo


def _res(uid, rv, value):
    return SimpleNamespace(metadata=SimpleNamespace(uid=uid, resource_version=rv), value=value)


def test_computes_once_per_version_and_again_for_a_new_version():
    calls = []
    memo = VersionMemo(lambda r: calls.append(r.value) or r.value * 2)
    assert memo(_res("u1", "5", 1)) == 2
    assert memo(_res("u1", "5", 99)) == 2  # same version: the remembered result
    assert memo(_res("u1", "6", 3)) == 6
    assert memo(_res("u2", "5", 4)) == 8  # another object with the same version number
    assert calls == [1, 3, 4]


def test_unversioned_objects_are_never_remembered():
    memo = VersionMemo(lambda r: r.value)
    assert memo(_res("", "5", 1)) == 1 and memo(_res("", "5", 2)) == 2
    assert memo(_res("u", "", 1)) == 1 and memo(_res("u", "", 2)) == 2


def test_least_recently_used_versions_are_dropped_beyond_the_size():
    calls = []
    memo = VersionMemo(lambda r: calls.append(r.value) or r.value, size=2)
    memo(_res("a", "1", 1))
    memo(_res("b", "1", 2))
    memo(_res("a", "1", 1))  # a is now the most recent
    memo(_res("c", "1", 3))  # b goes
    memo(_res("a", "1", 1))
    memo(_res("b", "1", 2))
    assert calls == [1, 2, 3, 2]
