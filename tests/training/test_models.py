import pytest
import torch

from training.models import FAMILIES, build_model, model_kwargs

ARCHITECTURES = ["mlp", "conv"]
COMBINATIONS = [(f, a) for f in FAMILIES for a in ARCHITECTURES]


def _as_tuple(output):
    return output if isinstance(output, tuple) else (output,)


def _inputs(model, count=3):
    images = torch.rand(count, *model.image_shape)
    label = model.one_hot(torch.arange(count) % max(model.num_classes, 1))
    return images, label


@pytest.mark.parametrize(("family", "architecture"), COMBINATIONS)
def test_shapes_of_every_family_and_architecture(family, architecture):
    model = build_model(family, architecture, 5, image_shape=(1, 28, 28), num_classes=4)
    images, label = _inputs(model)
    encoded = model.encoder(images, label)
    if model.variational:
        mean, logvar = encoded
        assert mean.shape == logvar.shape == (3, 5)
    else:
        assert encoded.shape == (3, 5)
    decoded = model.decoder(torch.randn(3, 5), label)
    assert decoded.shape == (3, 1, 28, 28)
    assert decoded.min() >= 0 and decoded.max() <= 1
    assert model.conditional == (family == "cvae")
    assert model.variational == (family in ("vae", "beta_vae", "cvae"))


@pytest.mark.parametrize(("family", "architecture"), COMBINATIONS)
def test_encoder_has_no_randomness(family, architecture):
    model = build_model(family, architecture, 4, image_shape=(3, 16, 16), num_classes=3)
    model.train()  # even in training mode: sampling lives outside the encoder
    images, label = _inputs(model)
    first, second = model.encoder(images, label), model.encoder(images, label)
    for a, b in zip(_as_tuple(first), _as_tuple(second), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_cvae_output_depends_on_the_label(architecture):
    model = build_model("cvae", architecture, 3, image_shape=(1, 8, 8), num_classes=2)
    z = torch.randn(1, 3)
    as_first = model.decoder(z, torch.tensor([[1.0, 0.0]]))
    as_second = model.decoder(z, torch.tensor([[0.0, 1.0]]))
    assert not torch.allclose(as_first, as_second)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize(
    ("family", "architecture"),
    [("cvae", "conv"), ("ae", "mlp"), ("vae", "conv"), ("sparse_ae", "mlp")],
)
def test_submodules_script_and_match_eager(family, architecture):
    model = build_model(family, architecture, 4, image_shape=(1, 8, 8), num_classes=2).eval()
    images, label = _inputs(model, 2)
    scripted_decoder = torch.jit.script(model.decoder)
    z = torch.randn(2, 4)
    assert torch.allclose(scripted_decoder(z, label), model.decoder(z, label))
    scripted_encoder = torch.jit.script(model.encoder)
    eager, scripted = model.encoder(images, label), scripted_encoder(images, label)
    for a, b in zip(_as_tuple(eager), _as_tuple(scripted), strict=True):
        assert torch.allclose(a, b)


def test_model_kwargs_rebuild_the_same_architecture():
    model = build_model(
        "sparse_ae",
        "conv",
        6,
        image_shape=(3, 16, 16),
        sparsity_kind="kl",
        channels=[8, 16],
        hidden=32,
    )
    rebuilt = build_model(**model_kwargs(model))
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.code_activation == "sigmoid"
    assert rebuilt.sparsity_rho == model.sparsity_rho
    images = torch.rand(2, 3, 16, 16)
    assert torch.equal(rebuilt.encoder(images), model.encoder(images))


def test_family_options_have_defaults_and_reject_unknown_names():
    assert build_model("beta_vae", "mlp", 2).beta == 4.0
    assert build_model("vae", "mlp", 2, beta=0.5).beta == 0.5
    with pytest.raises(ValueError, match="takes no option"):
        build_model("ae", "mlp", 2, beta=2.0)


def test_bad_names_and_shapes_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="unknown family"):
        build_model("gan", "mlp", 2)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("ae", "transformer", 2)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("cvae", "mlp", 2)
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model("ae", "conv", 2, image_shape=(1, 30, 30))
