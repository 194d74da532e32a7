"""Image files given to `hpstudy predict`: special files, decompression bombs, truncated and non-images, names
that would split the error line. Every file is read before the model is loaded, so none of these trains or
loads anything; the good image given first is never lost to a traceback."""
import os
import socket

from tests.helpers import pattern, write_png
from tests.hostile_inputs import case
from tests.hostile_inputs.data import png_declaring


def predict(ctx, *images):
    """`hpstudy predict` on a good image, then `images`."""
    good = ctx.tmp / "good.png"
    write_png(good, pattern(1, 8, 8))
    return ["predict", ctx.results(), good, *images]


@case("predict_named_pipe", "named pipe")
def _(ctx):
    os.mkfifo(ctx.tmp / "pipe.png")
    return predict(ctx, ctx.tmp / "pipe.png")


@case("predict_symlink_to_a_named_pipe", "named pipe")
def _(ctx):
    os.mkfifo(ctx.tmp / "pipe")
    os.symlink(ctx.tmp / "pipe", ctx.tmp / "link.png")
    return predict(ctx, ctx.tmp / "link.png")


@case("predict_socket", "socket")
def _(ctx):
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(ctx.tmp / "s.png"))
    return predict(ctx, ctx.tmp / "s.png")


@case("predict_dev_zero", "device")
def _(ctx):
    os.symlink("/dev/zero", ctx.tmp / "zero.png")
    return predict(ctx, ctx.tmp / "zero.png")


@case("predict_a_folder", "a folder")
def _(ctx):
    (ctx.tmp / "x.png").mkdir()
    return predict(ctx, ctx.tmp / "x.png")


@case("predict_missing_file", "missing.png")
def _(ctx):
    return predict(ctx, ctx.tmp / "missing.png")


@case("predict_symlink_loop", "loop.png")
def _(ctx):
    os.symlink("loop.png", ctx.tmp / "loop.png")
    return predict(ctx, ctx.tmp / "loop.png")


@case("predict_decompression_bomb", "bomb.png")
def _(ctx):
    (ctx.tmp / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    return predict(ctx, ctx.tmp / "bomb.png")


@case("predict_truncated_large_image", "large.png")
def _(ctx):
    # 10000×10000: over Pillow's warning threshold, under its error; the pixels are missing.
    (ctx.tmp / "large.png").write_bytes(png_declaring(10_000, 10_000, bytes(1000)))
    return predict(ctx, ctx.tmp / "large.png")


@case("predict_truncated_png", "cut.png")
def _(ctx):
    write_png(ctx.tmp / "whole.png", pattern(2, 64, 64))
    whole = (ctx.tmp / "whole.png").read_bytes()
    (ctx.tmp / "cut.png").write_bytes(whole[:len(whole) // 2])
    return predict(ctx, ctx.tmp / "cut.png")


@case("predict_text_named_png", "notes.png")
def _(ctx):
    (ctx.tmp / "notes.png").write_text("these are not pixels")
    return predict(ctx, ctx.tmp / "notes.png")


@case("predict_empty_file", "empty.png")
def _(ctx):
    (ctx.tmp / "empty.png").write_bytes(b"")
    return predict(ctx, ctx.tmp / "empty.png")


@case("predict_name_with_a_newline", "\\nhpstudy: error: forged")
def _(ctx):
    path = ctx.tmp / "a\nhpstudy: error: forged.png"
    path.write_bytes(b"")
    return predict(ctx, path)


@case("predict_missing_name_with_a_newline", "\\nhpstudy: error: forged")
def _(ctx):
    return predict(ctx, ctx.tmp / "gone\nhpstudy: error: forged.png")


@case("predict_name_with_an_escape_sequence", "\\x1b[2J")
def _(ctx):
    path = ctx.tmp / "\x1b[2Jclear.png"
    path.write_text("not an image")
    return predict(ctx, path)


@case("predict_name_with_an_undecodable_byte", "\\udcff")
def _(ctx):
    path = ctx.tmp / os.fsdecode(b"\xff.png")
    path.write_text("not an image")
    return predict(ctx, path)


@case("predict_png_with_a_bad_header_crc", "crc.png")
def _(ctx):
    body = bytearray(png_declaring(8, 8, bytes(8 * 9)))
    body[29] ^= 0xFF     # the IHDR chunk's checksum
    (ctx.tmp / "crc.png").write_bytes(bytes(body))
    return predict(ctx, ctx.tmp / "crc.png")
