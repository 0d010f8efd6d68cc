"""The .ncz codec: round trips of any size and mode, the wrong model, and 10,000 damaged files."""

import re
import shutil
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from normcompress.codec import CodecError, EntropyModel, coder_for, decode, encode, parse
from normcompress.data import load_sample
from normcompress.metrics import SYSTEM_METRICS
from normcompress.runs import RunStore, load_model
from normcompress.train import TrainConfig, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("codec")
    store = RunStore(root / "runs")
    run = train(TrainConfig(norm="L2", epochs=1, dataset="synthetic", limit=256, device="cpu"), store)
    model = load_model(run)
    return store, run, model, coder_for(run, model)


def image_file(tmp_path, mode, size, name="in.png"):
    rng = np.random.default_rng(1)
    path = tmp_path / name
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 4), dtype=np.uint8), "RGBA").convert(mode).save(path)
    return path


@pytest.mark.parametrize(
    "mode, size, decoded_mode",
    [("RGB", (97, 61), "RGB"), ("L", (32, 32), "L"), ("RGBA", (45, 70), "RGBA"), ("P", (17, 9), "RGB")],
)
def test_round_trip_any_size_and_mode(trained, tmp_path, mode, size, decoded_mode):
    store, run, model, entropy = trained
    source = image_file(tmp_path, mode, size)
    encoded = encode(run, model, entropy, source)
    decoded = decode(encoded.data, store)
    assert decoded.size == size and decoded.mode == decoded_mode
    assert np.array_equal(np.asarray(decoded), np.asarray(encoded.reconstruction))  # the decoder sees what we report
    if mode == "RGBA":
        assert np.array_equal(np.asarray(decoded)[..., 3], np.asarray(Image.open(source))[..., 3])
    assert len(encoded.data) < size[0] * size[1] * 3  # smaller than the raw pixels
    assert 5 < encoded.psnr < 60 and 0 < encoded.max_error <= 255


def test_the_entropy_model_is_fitted_once_and_kept(trained):
    _, run, model, coder = trained
    assert (run.path / "entropy.json").exists()
    again = EntropyModel.for_run(run, model)
    assert again.mean.tolist() == pytest.approx(coder.entropy.mean.tolist()) and len(coder.entropy.spread) == 64


def test_a_larger_step_makes_smaller_files(trained, tmp_path):
    _, run, model, entropy = trained
    source = image_file(tmp_path, "RGB", (64, 64))
    sizes = [len(encode(run, model, entropy, source, step).data) for step in (0.1, 0.5, 2.0)]
    assert sizes[0] > sizes[1] > sizes[2]


def test_wrong_or_missing_model_is_a_clear_error(trained, tmp_path):
    _store, run, model, entropy = trained
    data = encode(run, model, entropy, image_file(tmp_path, "RGB", (32, 32))).data
    with pytest.raises(CodecError, match=f"needs the run whose id ends in {run.id[-6:]}"):
        decode(data, RunStore(tmp_path / "empty"))
    other = train(
        TrainConfig(norm="L1", epochs=1, dataset="synthetic", limit=128, device="cpu", seed=5),
        RunStore(tmp_path / "other"),
    )
    copy = RunStore(tmp_path / "copy")
    (copy.root / run.id).mkdir(parents=True)
    for name in ("config.json", "summary.json", "metrics.jsonl", "entropy.json"):
        (copy.root / run.id / name).write_bytes((run.path / name).read_bytes())
    (copy.root / run.id / "checkpoint.pt").write_bytes(other.checkpoint_path.read_bytes())
    with pytest.raises(CodecError, match="other weights"):
        decode(data, copy)


def test_the_weights_hash_is_kept_only_while_the_weights_stay_the_same(trained):
    import hashlib

    from normcompress.codec.latents import weights_hash

    _, run, _, _ = trained
    model = load_model(run)

    def by_hand() -> bytes:
        digest = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode() + tensor.contiguous().numpy().tobytes())
        return digest.digest()[: len(weights_hash(model))]

    first = weights_hash(model)
    assert first == weights_hash(model) == by_hand()
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)  # an in-place write: the cached hash must not be used
    assert weights_hash(model) == by_hand() != first
    model.load_state_dict(load_model(run).state_dict())  # the weights back (copied in place)
    assert weights_hash(model) == first


def test_the_header_is_small_and_a_tied_id_tail_is_settled_by_the_weights(trained, tmp_path):
    _store, run, model, entropy = trained
    encoded = encode(run, model, entropy, image_file(tmp_path, "RGB", (32, 32)))
    assert len(encoded.data) - encoded.payload_bytes == 28  # 0.22 bpp of container on a 32x32 image
    other = train(
        TrainConfig(norm="L1", epochs=1, dataset="synthetic", limit=128, device="cpu", seed=5),
        RunStore(tmp_path / "other"),
    )
    tied = RunStore(tmp_path / "tied")
    tied.root.mkdir()
    impostor = tied.root / ("00000000-000000.000-L1-" + run.id[-6:])  # the same tail, other weights
    shutil.copytree(other.path, impostor)
    shutil.copytree(run.path, tied.root / run.id)
    assert decode(encoded.data, tied).size == (32, 32)
    assert not (impostor / "entropy.json").exists()  # only hashed, never fitted


@pytest.mark.parametrize("max_error", [0, 1, 2, 4, 8])
def test_near_lossless_bounds_every_pixel_of_real_images(trained, tmp_path, max_error):
    store, run, model, entropy = trained
    images = load_sample().val[:48]  # real CIFAR-10 test images, as a 6x8 mosaic
    mosaic = images.view(6, 8, 3, 32, 32).permute(2, 0, 3, 1, 4).reshape(3, 6 * 32, 8 * 32)
    source = tmp_path / "mosaic.png"
    Image.fromarray(mosaic.permute(1, 2, 0).numpy()).save(source)
    with_latents = encode(run, model, entropy, source, max_error=max_error, allow_flat=False)
    encoded = encode(run, model, entropy, source, max_error=max_error)  # the smaller of the two
    assert len(encoded.data) <= len(with_latents.data)
    assert encoded.payload_bytes == 0  # on real images the residual layer alone was smaller here
    for file in (with_latents, encoded):
        decoded = np.asarray(decode(file.data, store)).astype(int)
        assert np.abs(decoded - mosaic.permute(1, 2, 0).numpy().astype(int)).max() <= max_error
        assert file.max_error <= max_error and file.residual_bytes > 0
    # The context model predicts each pixel from its decoded neighbours: a 1-epoch model's residual,
    # coded alone under one Laplace (the first coder), took 25 bpp lossless and 13 at D=8 here.
    residual_bpp = with_latents.residual_bytes * 8 / (6 * 32 * 8 * 32)
    assert residual_bpp < {0: 15.5, 1: 11.5, 2: 10, 4: 8.5, 8: 7}[max_error]


def test_near_lossless_gray_and_rgba(trained, tmp_path):
    store, run, model, entropy = trained
    for mode in ("L", "RGBA"):
        source = image_file(tmp_path, mode, (37, 23), f"{mode}.png")
        decoded = np.asarray(decode(encode(run, model, entropy, source, max_error=1).data, store)).astype(int)
        original = np.asarray(Image.open(source)).astype(int)
        assert np.abs(decoded - original).max() <= 1  # alpha exact, colour within 1


def test_foreign_and_truncated_files(trained, tmp_path):
    store, run, model, entropy = trained
    source = image_file(tmp_path, "RGB", (40, 40))
    with pytest.raises(CodecError, match=r"not a \.ncz file"):
        decode(source.read_bytes(), store)
    data = encode(run, model, entropy, source).data
    for cut in (0, 3, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(CodecError):
            decode(data[:cut], store)


def test_compress_and_decompress_cli(run_cli, trained, tmp_path, monkeypatch):
    store, run, _, _ = trained
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store.root))
    sources = [image_file(tmp_path, "RGB", (50, 30), "a.png"), image_file(tmp_path, "L", (33, 33), "b.png")]
    code, out, err = run_cli("compress", run.id, *map(str, sources), "-o", str(tmp_path / "ncz"))
    assert code == 0, err
    assert "latent bpp" in out and "a.png" in out and (tmp_path / "ncz" / "b.ncz").exists()
    code, out, err = run_cli(
        "decompress", str(tmp_path / "ncz" / "a.ncz"), str(tmp_path / "ncz" / "b.ncz"), "-o", str(tmp_path / "png")
    )
    assert code == 0, err
    assert Image.open(tmp_path / "png" / "b.png").mode == "L"
    (tmp_path / "ncz" / "bad.ncz").write_bytes(b"NCZ" + b"\\0" * 40)
    code, _, err = run_cli("decompress", str(tmp_path / "ncz" / "bad.ncz"), "-o", str(tmp_path / "png"))
    assert code == 1 and "damaged" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def sample_file(trained, tmp_path_factory):
    _store, run, model, entropy = trained
    path = image_file(tmp_path_factory.mktemp("fuzz"), "RGBA", (70, 41))
    return encode(run, model, entropy, path, max_error=2, allow_flat=False).data  # latents, alpha, residual


@pytest.fixture(scope="module")
def flat_file(trained, tmp_path_factory):
    _store, run, model, entropy = trained
    path = image_file(tmp_path_factory.mktemp("flat"), "RGB", (20, 12))
    encoded = encode(run, model, entropy, path, max_error=0)
    assert encoded.payload_bytes == 0  # noise is cheaper without latents
    return encoded.data


def test_damaged_flat_files_never_crash_the_decoder(trained, flat_file):
    body = bytearray(flat_file[:-4])
    refused = []
    for position in range(0, len(body), 3):  # every third byte, flipped, with the checksum fixed
        damaged = bytearray(body)
        damaged[position] ^= 0x5A
        try:
            picture = decode(with_checksum(bytes(damaged)), trained[0])
        except CodecError:
            refused.append(position)
            continue
        assert_decoded_as_claimed(picture, with_checksum(bytes(damaged)))
    # Magic, version, id tail and weights hash (the first 15 bytes) never let a changed file through; a
    # changed residual payload decodes to another picture of the claimed size (there is no per-pixel check).
    assert list(range(0, 15, 3)) == [p for p in refused if p < 15]


def assert_decoded_as_claimed(picture, data: bytes) -> None:
    """A damaged file that still decodes gives exactly the picture its header claims, no larger."""
    header = parse(data)
    assert picture.size == (header.width, header.height)
    assert picture.mode == header.kind if header.kind != "RGBA" else picture.mode == "RGBA"
    assert header.width * header.height <= 4096 * len(data)


def with_checksum(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def damaged_file_decodes_or_is_refused(trained, sample_file, data) -> None:
    store = trained[0]
    body = bytearray(sample_file[:-4])
    kind = data.draw(st.sampled_from(["truncate", "flip", "flip-and-fix-checksum", "splice-and-fix-checksum"]))
    if kind == "truncate":
        damaged = bytes(sample_file[: data.draw(st.integers(0, len(sample_file) - 1))])
    else:
        for _ in range(data.draw(st.integers(1, 4))):
            position = data.draw(st.integers(0, len(body) - 1))
            if kind.startswith("splice"):
                body[position:position] = data.draw(st.binary(min_size=1, max_size=8))
            else:
                body[position] ^= data.draw(st.integers(1, 255))
        damaged = with_checksum(bytes(body)) if kind.endswith("fix-checksum") else bytes(body) + sample_file[-4:]
    try:
        picture = decode(damaged, store)
    except CodecError:
        return  # refused with one message: the expected outcome for almost every file
    # CRC-32 detects every change of up to 32 bits and every truncation here: only a file whose checksum
    # was recomputed after the damage can get past it, and then it decodes to what its header claims.
    assert kind.endswith("fix-checksum") or damaged == sample_file, kind  # (flips that cancel out)
    assert_decoded_as_claimed(picture, damaged)


@settings(max_examples=1_000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.data())
def test_a_thousand_damaged_files_never_crash_the_decoder(trained, sample_file, data):
    damaged_file_decodes_or_is_refused(trained, sample_file, data)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
@given(st.data())
def test_ten_thousand_damaged_files_never_crash_the_decoder(trained, sample_file, data):
    """Ten times as many, drawn afresh each time (the fast test's thousand are always the same)."""
    damaged_file_decodes_or_is_refused(trained, sample_file, data)


def test_rd_writes_table_and_plot_with_every_codec(run_cli, trained, tmp_path, monkeypatch):
    store, run, _, _ = trained
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(store.root))
    code, out, err = run_cli("rd", run.id, "--images", "6", "-o", str(tmp_path / "rd"))
    assert code == 0, err
    rows = list(__import__("csv").DictReader(open(tmp_path / "rd" / "rd.csv")))
    codecs = {r["codec"] for r in rows}
    assert {"WebP", "JPEG", "PCA", f"L2 {run.id[-6:]}"} == codecs
    ours = [r for r in rows if r["codec"].startswith("L2")]
    assert len(ours) == 5 and float(ours[0]["bpp"]) > float(ours[-1]["bpp"])  # larger steps, fewer bits
    jpeg = [r for r in rows if r["codec"] == "JPEG"]
    assert all(0 < float(r["container_bpp"]) < float(r["bpp"]) for r in jpeg)  # the header is counted apart
    assert (tmp_path / "rd" / "rd.png").stat().st_size > 10_000
    assert "| PCA 256 values (unquantised) | – | – |" in out  # PCA has no file, so no bits
    assert re.search(rf"- L2 {run.id[-6:]}: (no PSNR range in common with WebP|[+-]\d+\.\d% over )", out)
    assert re.search(r"- JPEG: [+-]\d+\.\d% over \d+\.\d\d–\d+\.\d\d dB", out)


def test_bd_rate_of_curves_a_constant_factor_apart():
    from normcompress.rd import bd_rate

    anchor = [(0.5, 24.0), (0.8, 26.0), (1.2, 28.0), (1.8, 30.0)]
    # The same PSNRs at 0.9 times the bits everywhere: exactly -10%, whatever the interpolation.
    delta, low, high = bd_rate(anchor, [(0.9 * r, d) for r, d in anchor])
    assert delta == pytest.approx(-10.0, abs=1e-6) and (low, high) == (24.0, 30.0)
    # 1.25 times the bits of a straight anchor (log10 bpp = (PSNR - 20)/10) on part of its range only.
    anchor = [(10 ** ((d - 20) / 10), d) for d in (20.0, 25.0, 29.0, 32.0)]
    delta, low, high = bd_rate(anchor, [(10 ** ((d - 20) / 10) * 1.25, d) for d in (25.0, 27.0, 29.0)])
    assert delta == pytest.approx(25.0, abs=1e-6) and (low, high) == (25.0, 29.0)


def test_bd_rate_by_hand_where_the_curves_diverge_and_where_they_never_meet():
    from normcompress.rd import bd_rate

    # log10(bpp) = (PSNR - 20)/10 against 1.2 times that: straight lines, which PCHIP keeps straight.
    # The gap 0.02 (PSNR - 20) averages 0.1 over 20-30 dB, so BD-rate = 10^0.1 - 1 = +25.89%.
    anchor = [(10 ** ((d - 20) / 10), d) for d in (20.0, 24.0, 27.0, 30.0)]
    test = [(10 ** (1.2 * (d - 20) / 10), d) for d in (20.0, 22.0, 26.0, 30.0)]
    delta, low, high = bd_rate(anchor, test)
    assert delta == pytest.approx((10**0.1 - 1) * 100, abs=1e-6) and (low, high) == (20.0, 30.0)
    assert bd_rate(anchor, [(5.0, 31.0), (8.0, 33.0)]) is None  # no PSNR in common
    assert bd_rate(anchor, [(1.0, 25.0)]) is None  # one point is not a curve


def rate_run(store, rate_lambda, **overrides):
    config = {
        "norm": "L2",
        "epochs": 2,
        "dataset": "synthetic",
        "limit": 256,
        "device": "cpu",
        "rate_lambda": rate_lambda,
    }
    return train(TrainConfig(**{**config, **overrides}), store)


def test_rate_lambda_trains_a_prior_and_trades_bits(tmp_path):
    store = RunStore(tmp_path / "runs")
    source = tmp_path / "mosaic.png"
    mosaic = load_sample().val[:24].view(4, 6, 3, 32, 32).permute(2, 0, 3, 1, 4).reshape(3, 128, 192)
    Image.fromarray(mosaic.permute(1, 2, 0).numpy()).save(source)
    bits = []
    for rate_lambda in (0.001, 0.3):
        run = rate_run(store, rate_lambda)
        assert set(run.load_checkpoint()["prior"]) == {"mean", "log_scale"}
        model = load_model(run)
        coder = coder_for(run, model)
        assert coder.default_step == 1.0 and not (run.path / "entropy.json").exists()  # the learned prior
        encoded = encode(run, model, coder, source)
        assert np.array_equal(np.asarray(decode(encoded.data, store)), np.asarray(encoded.reconstruction))
        bits.append(encoded.payload_bytes)
    assert bits[1] < bits[0] / 2  # a larger rate weight buys a much smaller file


def test_rate_lambda_resume_is_exact(tmp_path):
    import threading

    from normcompress.train import EpochEnd

    store = RunStore(tmp_path)
    reference = rate_run(store, 0.05, epochs=3)
    cancel = threading.Event()
    stopped = train(
        TrainConfig(norm="L2", epochs=3, dataset="synthetic", limit=256, device="cpu", rate_lambda=0.05),
        store,
        lambda e: isinstance(e, EpochEnd) and e.epoch == 1 and cancel.set(),
        cancel,
    )
    train(TrainConfig(), store, resume=stopped.id)
    strip = lambda run: [
        {k: v for k, v in r.items() if k not in ("epoch_time_s", *SYSTEM_METRICS)} for r in run.metrics()
    ]
    assert strip(stopped) == strip(reference)  # the noise comes from the restored RNG


def test_bad_rate_lambda(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("NORMCOMPRESS_RUNS_DIR", str(tmp_path))
    code, _, err = run_cli("train", "--rate-lambda", "-1")
    assert code == 2 and "--rate-lambda" in err


def test_a_run_trained_on_256_pixel_tiles_compresses_and_decodes(tmp_path, image_folder):
    """The tile size was one byte in format version 1: a run at --image-size 256 could not compress."""
    store = RunStore(tmp_path / "runs")
    run = train(
        TrainConfig(norm="L2", epochs=1, dataset=f"folder:{image_folder}", image_size=256, batch_size=4, device="cpu"),
        store,
    )
    model = load_model(run)
    source = image_file(tmp_path, "RGB", (300, 260))
    encoded = encode(run, model, coder_for(run, model), source)
    assert parse(encoded.data).tile == 256
    assert np.array_equal(np.asarray(decode(encoded.data, store)), np.asarray(encoded.reconstruction))


@pytest.mark.parametrize("mode, size", [("RGB", (17, 9)), ("L", (31, 5)), ("RGBA", (3, 40)), ("RGB", (1, 1))])
@pytest.mark.parametrize("max_error", [0, 1, 4])
def test_the_learned_context_model_is_exact_on_odd_sizes_and_modes(trained, tmp_path, mode, size, max_error):
    from normcompress.codec.context import code_context, decode_context

    store, run, model, entropy = trained
    source = image_file(tmp_path, mode, size)
    encoded = encode(run, model, entropy, source, max_error=max_error)  # whichever flat coder was smaller
    assert parse(encoded.data).flat  # noise: no latents
    decoded = decode(encoded.data, store)
    assert np.array_equal(np.asarray(decoded), np.asarray(encoded.reconstruction))
    original = np.asarray(Image.open(source).convert(decoded.mode)).astype(np.int64)
    assert np.abs(np.asarray(decoded).astype(int) - original).max() <= max_error
    planes = original.reshape(size[1], size[0], -1).transpose(2, 0, 1)[:3]  # colour without alpha, or gray
    pixels, low, high, data = code_context(planes, max_error)
    assert np.array_equal(decode_context(data, low, high, max_error, len(planes), size[1], size[0]), pixels)
    assert np.abs(pixels - planes).max() <= max_error


def test_the_learned_context_model_codes_real_images_losslessly_under_4_bits_a_sub_pixel(trained, tmp_path):
    from normcompress.codec.context import code_context

    store, run, model, entropy = trained
    images = load_sample().val[:40].numpy().astype(np.int64)
    streams = [code_context(image, 0) for image in images]
    assert all(np.array_equal(decoded, image) for (decoded, *_), image in zip(streams, images, strict=False))
    # 3.26 bits per sub-pixel on 100 test images when it was trained; LOCO-I's predictor with one Laplace
    # per channel and image, the coder before it, needed 4.3 on these images.
    bits = np.mean([len(data) * 8 for *_, data in streams]) / (3 * 32 * 32)
    assert bits < 3.6
    source = tmp_path / "one.png"
    Image.fromarray(images[0].transpose(1, 2, 0).astype(np.uint8)).save(source)
    assert np.array_equal(
        np.asarray(decode(encode(run, model, entropy, source, max_error=0).data, store)), images[0].transpose(1, 2, 0)
    )


def test_old_flat_files_decode_and_another_context_model_version_is_refused(trained, tmp_path):
    from normcompress.codec.format import FLAT_FLAG, RESIDUAL_FLAG, pack, uvarint
    from normcompress.codec.latents import weights_hash
    from normcompress.codec.residual import code_residual

    store, run, model, entropy = trained
    pixels = load_sample().val[0]
    corrected, section, _ = code_residual(torch.full_like(pixels, 128), pixels, 1)  # before the learned model
    old = pack(
        run.id[-6:].encode(), weights_hash(model), RESIDUAL_FLAG | FLAT_FLAG, 32, 32, 32, 0.25, 0, 0, b"", None, section
    )
    assert np.array_equal(np.asarray(decode(old, store)), corrected.permute(1, 2, 0).numpy())
    source = tmp_path / "in.png"
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(source)
    data = encode(run, model, entropy, source, max_error=1).data
    header = parse(data)
    position = len(data) - 4 - len(header.residual) - len(uvarint(len(header.residual) // 4)) - 1  # the version
    assert data[position] == 1
    changed = with_checksum(data[:position] + b"\x02" + data[position + 1 : -4])
    with pytest.raises(CodecError, match="coded with context model version 2; this normcompress has version 1"):
        decode(changed, store)


def test_a_folder_is_encoded_in_order_with_the_encoder_batched_and_a_bad_file_in_its_place(
    trained, tmp_path, monkeypatch
):
    import normcompress.codec as codec
    from normcompress.errors import NormcompressError

    store, run, model, entropy = trained
    monkeypatch.setattr(codec, "ENCODER_BATCH_TILES", 5)  # several batches, one of them split by the bad file
    calls = []
    hook = model.encoder.register_forward_pre_hook(lambda module, args: calls.append(len(args[0])))
    sources = [
        image_file(tmp_path, mode, size, f"{i}.png")
        for i, (mode, size) in enumerate(
            [("RGB", (32, 32)), ("L", (40, 33)), ("RGB", (17, 9)), ("RGBA", (64, 64)), ("RGB", (32, 32))]
        )
    ]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    sources.insert(2, tmp_path / "bad.png")
    try:
        results = list(codec.encode_many(run, model, entropy, sources, max_error=None))
    finally:
        hook.remove()
    assert isinstance(results[2], NormcompressError) and "bad.png" in str(results[2])
    assert sum(calls) == 1 + 4 + 1 + 4 + 1 and len(calls) < 5  # every tile once, fewer calls than files
    for source, encoded in zip(sources, results, strict=False):
        if source.name == "bad.png":
            continue
        decoded = decode(encoded.data, store)
        assert decoded.size == Image.open(source).size
        assert np.array_equal(np.asarray(decoded), np.asarray(encoded.reconstruction))  # as reported


def test_rd_reports_a_file_that_cannot_be_coded_as_one_error(trained, tmp_path, monkeypatch):
    """encode_many hands a failed file back as its error; rd must raise it, not read .data off it."""
    import normcompress.codec.latents as latents
    from normcompress.rd import write_rd

    _, run, _, _ = trained
    monkeypatch.setattr(latents, "SYMBOL_RANGE", 1)  # every latent out of range
    with pytest.raises(CodecError, match="latents out of range for step"):
        write_rd([run], tmp_path / "rd", images=3)
