"""How edgenas's Relax passes are applied: one `PyExprMutator` over every Relax function of a module."""
from __future__ import annotations


def rewritten(mod, mutator_class):
    """`mod` with each Relax function visited by `mutator_class(mod)`, then bindings nothing reads removed."""
    from tvm import relax

    rewrite = mutator_class(mod)
    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewrite.builder_.update_func(gv, rewrite.visit_expr(func))
    return relax.transform.DeadCodeElimination()(rewrite.builder_.get())
