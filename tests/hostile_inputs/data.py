"""Datasets: npz files (huge declared arrays, deflated members, wild labels, odd zip members), image folders
(special files, decompression bombs, one class, names that would split a line), MNIST's IDX files (forged
headers, broken gzips, a gzip bomb, disagreeing files) and CIFAR-100's pickles, loaded by `hpstudy data info`
(which reads the data without training)."""
import gzip
import io
import os
import socket
import struct
import zipfile
import zlib

import numpy as np

from tests.helpers import EvilPickle, idx_bytes, npz, pattern, pickle_file, write_cifar100, write_mnist, write_png
from tests.hostile_inputs import case

X = np.zeros((30, 8, 8, 3), np.uint8)
Y = np.arange(30) % 2


def info(dataset, where):
    """The command line that loads `dataset` from `where`."""
    return ["data", "info", dataset, "--data-dir", where]


def npz_info(ctx, name="d.npz", **arrays):
    """`hpstudy data info npz` on a .npz file of `arrays` (x_train and y_train default to a good pair; None leaves
    one out)."""
    return info("npz", npz(ctx.tmp, name, **{"x_train": X, "y_train": Y, **arrays}))


def npy_header(shape, dtype="|u1") -> bytes:
    """The bytes of a .npy header (version 1.0) declaring an array of `shape` and `dtype`."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return out.getvalue()


def raw_npz(ctx, members: dict, compression=zipfile.ZIP_STORED):
    """`hpstudy data info npz` on a zip of `members` (name -> bytes), written as they are."""
    path = ctx.tmp / "raw.npz"
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, body in members.items():
            z.writestr(name, body)
    return info("npz", path)


def good_member(array) -> bytes:
    """A .npy file's bytes."""
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def png_declaring(width, height, pixels=b"") -> bytes:
    """A greyscale PNG whose header declares `width`×`height` pixels, holding only `pixels` (compressed)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(pixels)) + chunk(b"IEND", b""))


def tree(ctx, classes=("cat", "dog"), per_class=2):
    """A folder dataset of small good PNGs; returns its root."""
    root = ctx.tmp / "images"
    for label, name in enumerate(classes):
        for k in range(per_class):
            write_png(root / name / f"img{k}.png", pattern(10 * label + k, 8, 8))
    return root


# ---------------------------------------------------------------- npz: what it declares

@case("npz_header_declares_terabytes", "3.0 TB")
def _(ctx):
    return raw_npz(ctx, {"x_train.npy": npy_header((1_000_000, 1000, 1000, 3)), "y_train.npy": good_member(Y)})


@case("npz_deflated_member_declares_terabytes", "'y_train'")
def _(ctx):
    # A deflate bomb's shape: a few kB that would inflate without end, behind a header declaring 8 TB of labels.
    body = npy_header((1 << 40,), "<i8") + bytes(1 << 22)
    return raw_npz(ctx, {"x_train.npy": good_member(X), "y_train.npy": body}, zipfile.ZIP_DEFLATED)


@case("npz_member_holds_less_than_its_header_declares", "'x_train'")
def _(ctx):
    return raw_npz(ctx, {"x_train.npy": npy_header((400, 64, 64, 3)) + bytes(100), "y_train.npy": good_member(Y)})


@case("npz_member_that_is_not_a_npy_file", "no array 'x_train'")
def _(ctx):
    # np.load gives a member without .npy as raw bytes: read whole (a bomb inflates), then used as an array.
    return raw_npz(ctx, {"x_train": bytes(1 << 20), "y_train.npy": good_member(Y)}, zipfile.ZIP_DEFLATED)


def _patched_npz(ctx, name: str, patch) -> list:
    """A valid two-array npz whose every zip header is changed by `patch(body, at, is_local)` (at: the header's
    signature), as `hpstudy data info` arguments."""
    path = ctx.tmp / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x_train.npy", good_member(X))
        z.writestr("y_train.npy", good_member(Y))
    body = bytearray(path.read_bytes())
    for signature, local in ((b"PK\x03\x04", True), (b"PK\x01\x02", False)):   # local and central headers
        at = body.find(signature)
        while at >= 0:
            patch(body, at, local)
            at = body.find(signature, at + 4)
    path.write_bytes(bytes(body))
    return info("npz", path)


def _encrypted(body, at, local):
    body[at + (6 if local else 8)] |= 1               # the "encrypted" flag bit


def _method_99(body, at, local):
    offset = at + (8 if local else 10)                # the compression method
    body[offset:offset + 2] = struct.pack("<H", 99)


@case("npz_encrypted_member", "'x_train'")
def _(ctx):
    return _patched_npz(ctx, "locked.npz", _encrypted)


@case("npz_unknown_compression_method", "'x_train'")
def _(ctx):
    return _patched_npz(ctx, "odd.npz", _method_99)


@case("npz_header_of_an_unknown_version", "'x_train'")
def _(ctx):
    header = npy_header((4, 8, 8, 3))
    return raw_npz(ctx, {"x_train.npy": header[:6] + b"\x09\x00" + header[8:] + X.tobytes(),
                         "y_train.npy": good_member(Y)})


@case("npz_is_a_named_pipe", "named pipe")
def _(ctx):
    os.mkfifo(ctx.tmp / "pipe.npz")
    return info("npz", ctx.tmp / "pipe.npz")


@case("npz_name_with_a_newline", "\\nhpstudy: error: forged")
def _(ctx):
    path = ctx.tmp / "d\nhpstudy: error: forged.npz"
    path.write_bytes(b"not a zip")
    return info("npz", path)


@case("npz_zero_by_zero_images", "0×0")
def _(ctx):
    return npz_info(ctx, x_train=np.zeros((30, 0, 0, 3), np.uint8))


# ---------------------------------------------------------------- npz: labels and classes

@case("npz_label_2_to_the_62", "4611686018427387904")
def _(ctx):
    return npz_info(ctx, y_train=np.array([0, 1] * 13 + [2 ** 62] * 4, np.int64))


@case("npz_uint64_label_that_wraps_to_minus_one", "18446744073709551615")
def _(ctx):
    return npz_info(ctx, y_train=np.array([0, 1] * 13 + [2 ** 64 - 1] * 4, np.uint64))


@case("npz_label_above_the_class_limit", "100000")
def _(ctx):
    return npz_info(ctx, y_train=np.array([0, 1] * 13 + [5_000_000] * 4, np.int32))


@case("npz_one_label_value", "at least two classes")
def _(ctx):
    return npz_info(ctx, y_train=np.zeros(30, np.int64))


@case("npz_one_label_value_with_class_names", "at least two classes")
def _(ctx):
    return npz_info(ctx, y_train=np.ones(30, np.int64), class_names=np.array(["cat", "dog"]))


@case("npz_a_million_class_names", "class_names")
def _(ctx):
    return npz_info(ctx, class_names=np.array([f"c{i}" for i in range(1_000_000)]))


@case("npz_class_named_twice", "'cat'")
def _(ctx):
    return npz_info(ctx, class_names=np.array(["cat", "cat"]))


# ---------------------------------------------------------------- image folders: special files

@case("folder_named_pipe_named_png", "named pipe")
def _(ctx):
    root = tree(ctx)
    os.mkfifo(root / "cat" / "img9.png")
    return info("folder", root)


@case("folder_symlink_to_a_named_pipe", "named pipe")
def _(ctx):
    root = tree(ctx)
    os.mkfifo(ctx.tmp / "pipe")
    os.symlink(ctx.tmp / "pipe", root / "dog" / "img9.png")
    return info("folder", root)


@case("folder_socket_named_png", "socket")
def _(ctx):
    root = tree(ctx)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "cat" / "s.png"))
    return info("folder", root)


@case("folder_symlink_to_dev_zero", "device")
def _(ctx):
    root = tree(ctx)
    os.symlink("/dev/zero", root / "cat" / "zero.png")
    return info("folder", root)


@case("folder_folder_named_png", "x.png")
def _(ctx):
    root = tree(ctx)
    (root / "cat" / "x.png").mkdir()
    return info("folder", root)


# ---------------------------------------------------------------- image folders: what images declare

@case("folder_decompression_bomb", "bomb.png")
def _(ctx):
    root = tree(ctx)
    (root / "dog" / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    return info("folder", root)


@case("folder_images_too_large_together", "available")
def _(ctx):
    # 3000 images of 4000×4000 pixels: 144 GB decoded, in files of 16 kB each.
    root = ctx.tmp / "big"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
    from PIL import Image
    first = root / "a" / "0000.png"
    Image.new("L", (4000, 4000)).save(first)
    for k in range(1, 3000):
        os.link(first, root / "ab"[k % 2] / f"{k:04d}.png")
    return info("folder", root)


@case("folder_one_class_folder", "at least two classes")
def _(ctx):
    return info("folder", tree(ctx, classes=("cat",)))


@case("folder_train_val_test_with_one_class", "at least two classes")
def _(ctx):
    root = ctx.tmp / "images"
    for split in ("train", "val", "test"):
        write_png(root / split / "cat" / "a.png", pattern(1, 8, 8))
    return info("folder", root)


@case("folder_class_name_with_a_newline", "\\nhpstudy: error: forged")
def _(ctx):
    root = tree(ctx)
    bad = root / "dog\nhpstudy: error: forged"
    bad.mkdir()
    (bad / "x.png").write_text("not an image")
    return info("folder", root)


@case("folder_file_name_with_an_undecodable_byte", "\\udcff")
def _(ctx):
    root = tree(ctx)
    (root / os.fsdecode(b"cat") / os.fsdecode(b"\xff.png")).write_text("not an image")
    return info("folder", root)


# ---------------------------------------------------------------- MNIST's IDX files, CIFAR-100's pickles

def idx_folder(ctx, name=None, body=None, dataset="fashion_mnist"):
    """`hpstudy data info` on a folder of the four gzipped IDX files, ``name`` (without .gz) replaced by the
    gzip of ``body`` (or removed, for ``body`` None with a name)."""
    folder = ctx.tmp / "idx"
    write_mnist(folder, gz=True)
    if name is not None:
        (folder / f"{name}.gz").unlink()
        if body is not None:
            (folder / f"{name}.gz").write_bytes(gzip.compress(body))
    return info(dataset, folder)


@case("idx_header_declares_terabytes", "TB")
def _(ctx):
    header = b"\0\0\x08\x03" + struct.pack(">3I", 2 ** 32 - 1, 2 ** 16, 2 ** 16)
    return idx_folder(ctx, "train-images-idx3-ubyte", header)


@case("idx_gzip_cut_short", "corrupt gzip (EOFError")
def _(ctx):
    argv = idx_folder(ctx)
    path = ctx.tmp / "idx" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    return argv


@case("idx_gzip_bomb_after_the_labels", "holds more bytes than its header declares")
def _(ctx):
    argv = idx_folder(ctx)
    with gzip.GzipFile(ctx.tmp / "idx" / "t10k-labels-idx1-ubyte.gz", "wb") as stream:
        stream.write(idx_bytes(np.arange(20, dtype=np.uint8) % 10))
        stream.write(bytes(1 << 26))        # 64 MB of zeros in 64 kB: never inflated
    return argv


@case("idx_not_an_idx_file", "not an IDX file")
def _(ctx):
    return idx_folder(ctx, "train-labels-idx1-ubyte", b"PK\x03\x04 a zip where an IDX file goes")


@case("idx_labels_of_another_split", "labels but train-images-idx3-ubyte.gz holds")
def _(ctx):
    return idx_folder(ctx, "train-labels-idx1-ubyte", idx_bytes(np.arange(20, dtype=np.uint8) % 10))


@case("idx_label_200", "label 200")
def _(ctx):
    return idx_folder(ctx, "t10k-labels-idx1-ubyte", idx_bytes(np.full(20, 200, np.uint8)), dataset="mnist")


@case("idx_file_is_a_named_pipe", "named pipe")
def _(ctx):
    argv = idx_folder(ctx, "t10k-images-idx3-ubyte")
    os.mkfifo(ctx.tmp / "idx" / "t10k-images-idx3-ubyte")
    return argv


@case("idx_folder_named_like_a_file", "train-labels-idx1-ubyte.gz: is a folder")
def _(ctx):
    argv = idx_folder(ctx, "train-labels-idx1-ubyte")
    (ctx.tmp / "idx" / "train-labels-idx1-ubyte.gz").mkdir()
    return argv


@case("idx_folder_name_with_a_newline", "\\nhpstudy: error: forged")
def _(ctx):
    folder = ctx.tmp / "idx\nhpstudy: error: forged"
    folder.mkdir()
    return info("mnist", folder)


@case("cifar100_pickle_that_runs_code", "refused to load")
def _(ctx):
    folder = write_cifar100(ctx.tmp)
    pickle_file(EvilPickle(f"touch {ctx.tmp / 'pwned'}"), folder / "meta")
    return info("cifar100", folder)
