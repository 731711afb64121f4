"""Fine-tuning methods, one module each; importing this package registers the built-ins."""

from open_autoglm.methods import adapter, freeze, full, lora, prompt_learning  # noqa: F401  (registration)
from open_autoglm.methods.base import (
    METHODS,
    BaseMethod,
    MethodContext,
    MethodNotApplicable,
    MethodSpace,
    ModelShape,
)

__all__ = [
    "METHODS",
    "BaseMethod",
    "MethodContext",
    "MethodNotApplicable",
    "MethodSpace",
    "ModelShape",
]
