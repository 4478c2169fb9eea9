"""The front door: a small top level, every family in ``typedbackprop.nn``, no specs exported."""

import importlib
import pkgutil
import re

import typedbackprop as tbp
import typedbackprop.nn

SPEC = re.compile(r"^[A-Z0-9_]+_GRAD_[A-Z0-9_]+$")


def nn_modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(typedbackprop.nn.__path__) if m.name != "specs"]


def test_the_top_level_keeps_at_most_40_names_each_of_them_real():
    assert len(tbp.__all__) <= 40, tbp.__all__
    assert len(set(tbp.__all__)) == len(tbp.__all__)
    for name in tbp.__all__:
        assert hasattr(tbp, name), name
    for name in ["Dense", "Activation", "loss_and_grads", "network_loss_and_grads", "checked"]:
        assert name in tbp.__all__  # what the README's sections use
    assert tbp.nn is typedbackprop.nn


def test_the_nn_package_re_exports_every_family_module():
    exported = set(typedbackprop.nn.__all__)
    for name in nn_modules():
        module = importlib.import_module(f"typedbackprop.nn.{name}")
        for public in module.__all__:
            assert public in exported, f"typedbackprop.nn does not re-export {name}.{public}"
            assert getattr(typedbackprop.nn, public) is getattr(module, public), public
    for row in typedbackprop.nn.FAMILIES.values():
        assert row.record.__name__ in exported and row.forward.__name__ in exported


def test_no_module_exports_a_spec_or_an_explain_describer():
    for name in nn_modules():
        module = importlib.import_module(f"typedbackprop.nn.{name}")
        for public in module.__all__:
            assert not SPEC.match(public), f"{name} exports the spec {public}"
            assert not public.endswith(("_rows", "_equations_forward", "_equations_backward"))
