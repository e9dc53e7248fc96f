"""One generic test run over every registered model."""

import inspect

import pytest
import torch

from segdemo.models import MIN_INPUT_SIZE, build_model, get_spec, list_models
from segdemo.models.fuse import fold_batchnorm

PAPER_SIZES = [(33, 47)]
COMPACT_SIZES = [(37, 61), (65, 47)]


def sizes_for(name):
    return COMPACT_SIZES if get_spec(name).config == "compact" else PAPER_SIZES


def test_registry_has_every_family_in_both_configs():
    for family in ("fcn", "unet", "segnet"):
        assert list_models(family=family, config="paper"), family
        assert list_models(family=family, config="compact"), family


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError, match="unet_compact"):
        build_model("no_such_net")


@pytest.mark.parametrize("name", list_models())
class TestEveryModel:
    def test_builder_is_keyword_only(self, name):
        parameters = inspect.signature(get_spec(name).builder).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)

    def test_logits_at_input_size_for_odd_sizes(self, name):
        model = build_model(name, num_classes=5, in_channels=3).eval()
        for height, width in sizes_for(name):
            with torch.no_grad():
                logits = model(torch.randn(2, 3, height, width))
            assert logits.shape == (2, 5, height, width)
            assert torch.isfinite(logits).all()

    def test_in_channels(self, name):
        model = build_model(name, num_classes=3, in_channels=1).eval()
        height, width = sizes_for(name)[0]
        with torch.no_grad():
            assert model(torch.randn(1, 1, height, width)).shape == (1, 3, height, width)

    def test_backward_reaches_every_parameter(self, name):
        torch.manual_seed(0)
        model = build_model(name, num_classes=4).train()
        height, width = sizes_for(name)[0]
        logits = model(torch.randn(2, 3, height, width))
        torch.nn.functional.cross_entropy(logits, torch.randint(0, 4, (2, height, width))).backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, missing

    def test_eval_is_deterministic(self, name):
        model = build_model(name).eval()
        x = torch.randn(1, 3, *sizes_for(name)[0])
        with torch.no_grad():
            assert torch.equal(model(x), model(x))

    def test_folded_batchnorm_gives_the_same_logits(self, name):
        torch.manual_seed(0)
        model = build_model(name, num_classes=5).eval()
        for layer in model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2.0)
                layer.weight.data.uniform_(0.5, 1.5)
        folded = fold_batchnorm(model)
        def count_bn(m):
            return sum(isinstance(layer, torch.nn.BatchNorm2d) for layer in m.modules())
        assert count_bn(folded) < count_bn(model) or count_bn(model) == 0
        x = torch.randn(1, 3, *sizes_for(name)[0])
        with torch.no_grad():
            expected, got = model(x), folded(x)
        assert torch.allclose(expected, got, rtol=1e-3, atol=1e-4 * expected.abs().max().item() + 1e-5)

    def test_tiny_input_is_refused_clearly(self, name):
        model = build_model(name).eval()
        with pytest.raises(ValueError, match=f"at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}"):
            model(torch.randn(1, 3, 1, 1))

    def test_reset_classifier_changes_only_the_head(self, name):
        model = build_model(name, num_classes=11)
        head = {f"{n}" for n, _ in model.classifier().named_parameters()}
        before = {n: p.clone() for n, p in model.named_parameters()}
        model.reset_classifier(3)
        assert model.num_classes == 3
        kept = [n for n, p in model.named_parameters() if n in before and before[n].shape == p.shape]
        assert kept and all(torch.equal(before[n], dict(model.named_parameters())[n]) for n in kept
                            if not any(n.endswith(h) for h in head))
        model.eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, *sizes_for(name)[0])).shape[1] == 3
