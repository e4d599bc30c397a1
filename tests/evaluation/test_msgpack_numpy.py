"""openpi's msgpack-numpy wire format: round trips, the exact marker maps, refusals and validation."""

import msgpack
import numpy as np
import pytest

from robosteer_assets.evaluation.msgpack_numpy import MessageFormatError, packb, unpackb


@pytest.mark.parametrize("arr", [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.linspace(-1, 1, 10, dtype=np.float64),
    np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8),
    np.array([[1, -2], [3, -4]], dtype=">i4"),  # non-native byte order keeps its dtype
    np.array([True, False, True]),
    np.zeros((0, 8), np.float32),
    np.array(3.5, np.float16),  # 0-d
    np.array(["pick", "place"]),  # unicode arrays are allowed (<U5)
    np.array([b"ab", b"c"]),
    np.arange(24, dtype=np.int16).reshape(2, 3, 4).transpose(2, 0, 1),  # not C-contiguous
], ids=lambda a: f"{a.dtype.str}{list(a.shape)}")
def test_array_round_trip(arr):
    out = unpackb(packb(arr))
    assert isinstance(out, np.ndarray)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert not out.flags.writeable  # a read-only view on the message bytes, as openpi's


def test_wire_layout_is_openpis():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = msgpack.unpackb(packb({"a": arr}))  # plain msgpack: the marker map itself
    assert raw == {"a": {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": "<f4", b"shape": [2, 3]}}
    raw = msgpack.unpackb(packb(np.int64(7)))
    assert raw == {b"__npgeneric__": True, b"data": 7, b"dtype": "<i8"}
    # what openpi's packer produces (built here by hand) unpacks to the same array
    theirs = msgpack.packb({b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": arr.dtype.str,
                            b"shape": arr.shape})
    np.testing.assert_array_equal(unpackb(theirs), arr)


def test_nested_structures_and_scalars():
    obj = {
        "observation": {"image": np.ones((2, 2, 3), np.uint8), "state": [np.zeros(7), np.ones(1)]},
        "prompt": "open the drawer",
        "raw": b"\x00\xff",
        "meta": {"n": 3, "x": 1.5, "ok": True, "none": None},
        "scalars": [np.float32(0.25), np.int64(-3), np.bool_(True), np.uint8(200)],
    }
    out = unpackb(packb(obj))
    assert out["prompt"] == "open the drawer" and out["raw"] == b"\x00\xff"
    assert out["meta"] == {"n": 3, "x": 1.5, "ok": True, "none": None}
    np.testing.assert_array_equal(out["observation"]["image"], obj["observation"]["image"])
    np.testing.assert_array_equal(out["observation"]["state"][1], np.ones(1))
    for got, want in zip(out["scalars"], obj["scalars"]):
        assert type(got) is type(want) and got == want
    # np.float64 subclasses float: msgpack packs it as a float (as openpi's packer does)
    assert unpackb(packb(np.float64(2.5))) == 2.5


@pytest.mark.parametrize("bad", [
    np.array([object(), 1], dtype=object),
    np.array([1 + 2j]),
    np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]),
    np.complex64(1j),
], ids=["object", "complex", "structured", "complex-scalar"])
def test_refused_dtypes_raise_type_error(bad):
    with pytest.raises(TypeError, match=r"kinds V/O/c are refused"):
        packb({"x": bad})


def _marker(**fields):
    base = {b"__ndarray__": True, b"data": np.zeros(4, np.float32).tobytes(), b"dtype": "<f4", b"shape": [4]}
    base.update({k.encode(): v for k, v in fields.items()})
    return msgpack.packb({k: v for k, v in base.items() if v is not ...})


@pytest.mark.parametrize("message, match", [
    (_marker(shape=[5]), r"ndarray data: 16 bytes do not match shape \(5,\) x <f4 \(20 bytes expected\)"),
    (_marker(shape=[2, 3]), r"do not match shape \(2, 3\)"),
    (_marker(dtype="<f9"), r"ndarray dtype: unknown dtype '<f9'"),
    (_marker(dtype="|O"), r"ndarray dtype: '\|O' \(kind 'O'\) is refused"),
    (_marker(dtype="<c8"), r"kind 'c'"),
    (_marker(dtype=5), r"ndarray dtype: expected a dtype string such as '<f4', found int"),
    (_marker(data="text"), r"ndarray data: expected bytes, found str"),
    (_marker(shape=[-4]), r"ndarray shape: expected a list of non-negative ints, found \[-4\]"),
    (_marker(shape="4"), r"ndarray shape: expected a list of non-negative ints"),
    (_marker(shape=...), r"ndarray: missing field 'shape'"),
    (_marker(data=...), r"ndarray: missing field 'data'"),
    (msgpack.packb({b"__npgeneric__": True, b"data": 1}), r"numpy scalar: missing field 'dtype'"),
    (msgpack.packb({b"__npgeneric__": True, b"data": 300, b"dtype": "|u1"}), r"numpy scalar data: 300"),
    (msgpack.packb({b"__npgeneric__": True, b"data": [1], b"dtype": "<i8"}), r"numpy scalar data: expected"),
    (b"\xc1", r"message: not valid msgpack \(FormatError"),
    (b"\x92\x01", r"message: not valid msgpack \(ValueError: Unpack failed: incomplete input\)"),
    (b"\x01\x02", r"message: not valid msgpack \(ExtraData"),
    (b"\xa2\xff\xfe", r"message: not valid msgpack \(UnicodeDecodeError"),
], ids=["data-short", "shape-2d", "unknown-dtype", "object-dtype", "complex-dtype", "dtype-int", "data-str",
        "shape-negative", "shape-str", "no-shape", "no-data", "scalar-no-dtype", "scalar-overflow",
        "scalar-list", "garbage", "truncated", "extra-data", "bad-utf8"])
def test_malformed_messages_raise_value_error_naming_the_field(message, match):
    with pytest.raises(MessageFormatError, match=match) as e:
        unpackb(message)
    assert isinstance(e.value, ValueError)


def test_nested_malformed_array_is_found():
    bad = msgpack.packb({"observation": {"image": {b"__ndarray__": True, b"data": b"\x00" * 3, b"dtype": "|u1",
                                                   b"shape": [2, 2, 3]}}})
    with pytest.raises(MessageFormatError, match=r"3 bytes do not match shape \(2, 2, 3\) x \|u1 \(12 bytes"):
        unpackb(bad)
    with pytest.raises(MessageFormatError, match=r"message: expected bytes, found str"):
        unpackb("not bytes")
