"""One shared encoder, one linear head per task; building it for a method, saving and loading it back.

Pooling is the mean of the last hidden states over real (non-pad) tokens: the sentence encoders this tool
ships with (MiniLM from sentence-transformers, e5) were trained to embed that way, so their pooled features
are already meaningful before fine-tuning — which matters most under LoRA, where the encoder moves little.
A first-token ([CLS]) head would rely on a token those models never trained as a summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import AutoModel, PreTrainedTokenizerBase

from open_autoglm.atomic import write_json
from open_autoglm.config.sections import MethodConfig, ModelConfig
from open_autoglm.methods import METHODS, MethodContext
from open_autoglm.methods.params import method_params
from open_autoglm.models.pooling import mean_pool
from open_autoglm.run_folder import MULTITASK_META, ModelFolder, read_json_object
from open_autoglm.versions import versions

HEADS_FILE = "heads.safetensors"
PAD_LOGIT = -1e4  # the logit of a class the row's task does not have (never chosen, finite under fp16)
BACKBONE_DIR = "backbone"


class MultitaskModel(nn.Module):
    """backbone → mean pooling → dropout → each row's task head.

    `weighting` (how the tasks' losses combine) rides along as a submodule, so what it learns (uncertainty's
    log-variances, GradNorm's weights) is checkpointed and resumed with the model; saving keeps only the
    backbone and the heads.
    """

    def __init__(
        self,
        backbone: nn.Module,
        labels: dict[str, list[str]],
        dropout: float = 0.1,
        weighting: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        config: Any = backbone.config  # a transformers config (peft models forward it)
        hidden = int(config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({task: nn.Linear(hidden, len(names)) for task, names in labels.items()})
        self.tasks = list(labels)
        self.widest = max(len(names) for names in labels.values())
        self.weighting = weighting

    def forward(
        self, task: str | Tensor, input_ids: Tensor, attention_mask: Tensor, **inputs: Tensor
    ) -> Tensor:
        """Logits. `task` a name: every row is that task's, (B, its labels). `task` a tensor of task positions
        (B,), as training batches mix tasks: (B, most labels), each row's classes first and the rest at
        `PAD_LOGIT`. The backbone then runs once per task on that task's rows, cut to their own longest row:
        no task pays for another's padding, and a task's loss reaches back only through its own rows (PCGrad
        and GradNorm take one gradient per task)."""
        if isinstance(task, str):
            return self.heads[task](self._pooled(input_ids, attention_mask, inputs))
        logits = torch.full((input_ids.shape[0], self.widest), PAD_LOGIT, device=input_ids.device)  # (B, W)
        for index, name in enumerate(self.tasks):
            rows = (task == index).nonzero().squeeze(1)  # (n,)
            if rows.numel() == 0:
                continue
            mask = attention_mask[rows]
            columns = mask.any(0)  # the positions some row of this task fills (padding sits on one side)
            pooled = self._pooled(
                input_ids[rows][:, columns],
                mask[:, columns],
                {k: v[rows][:, columns] for k, v in inputs.items()},  # token_type_ids and the like: (B, T)
            )
            scores = self.heads[name](pooled)  # (n, its labels)
            logits[rows, : scores.shape[-1]] = scores.float()
        return logits

    def _pooled(self, input_ids: Tensor, attention_mask: Tensor, inputs: dict[str, Tensor]) -> Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state
        return self.dropout(mean_pool(hidden, attention_mask))  # (B, H)


def load_backbone(model_path: str, model_cfg: ModelConfig) -> nn.Module:
    """The encoder without any task head, weights in fp32 (autocast gives mixed precision)."""
    kwargs: dict[str, Any] = {"dtype": torch.float32, "trust_remote_code": model_cfg.trust_remote_code}
    if model_cfg.revision:
        kwargs["revision"] = model_cfg.revision
    backbone = AutoModel.from_pretrained(model_path, **kwargs)
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None  # mean pooling replaces it; an unused pooler would only collect no gradient
    return backbone


def apply_method(backbone: nn.Module, method: MethodConfig) -> nn.Module:
    """The configured method on the bare encoder, through the registry as `autoglm train` applies it (no task
    head: the heads always train); methods that can adapt a shared encoder list "multitask" in their `tasks`."""
    method_cls = METHODS.get(method.name)
    if "multitask" not in method_cls.tasks:
        supported = [name for name in METHODS.names() if "multitask" in METHODS.get(name).tasks]
        raise ValueError(
            f"recipe: multitask supports method.name {' or '.join(supported)}, got {method.name!r}"
        )
    ctx = MethodContext(task="multitask", objective="features")
    return method_cls().apply(backbone, method_params(method), ctx)


def last_shared_layer(backbone: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of the backbone's last numbered block (GradNorm's W), or all when unnumbered."""
    blocks: dict[int, list[nn.Parameter]] = {}
    trainable = [(name, p) for name, p in backbone.named_parameters() if p.requires_grad]
    for name, param in trainable:
        numbers = [int(part) for part in name.split(".") if part.isdigit()]
        if numbers:
            blocks.setdefault(numbers[-1], []).append(param)
    return blocks[max(blocks)] if blocks else [p for _, p in trainable]


def save_multitask(
    model: MultitaskModel,
    tokenizer: PreTrainedTokenizerBase,
    model_dir: Path,
    meta: dict[str, Any],
) -> None:
    """backbone/ (LoRA merged in, so it loads without the base), heads.safetensors, the tokenizer, multitask.json."""
    from safetensors.torch import save_file

    model_dir.mkdir(parents=True, exist_ok=True)
    backbone: Any = model.backbone
    if hasattr(backbone, "merge_and_unload"):  # a peft model: fold the adapters into the weights
        backbone = backbone.merge_and_unload()
    backbone.save_pretrained(str(model_dir / BACKBONE_DIR), safe_serialization=True)
    heads = {k: v.detach().cpu().contiguous() for k, v in model.heads.state_dict().items()}
    save_file(heads, str(model_dir / HEADS_FILE))
    tokenizer.save_pretrained(str(model_dir))
    meta = {
        **meta,
        "pooling": "mean",
        "heads_file": HEADS_FILE,
        "backbone": BACKBONE_DIR,
        "versions": versions(),
    }
    write_json(ModelFolder(model_dir).multitask_meta, meta)


def load_multitask(
    model_dir: str | Path, *, trust_remote_code: bool = False
) -> tuple[MultitaskModel, PreTrainedTokenizerBase, dict[str, Any]]:
    """What `save_multitask` wrote, in eval mode: (model, tokenizer, meta).

    The backbone's own code runs only when the caller asks (`trust_remote_code`), never because the folder's
    metadata says so."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    meta_file = ModelFolder(model_dir).multitask_meta
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{model_dir}: no {MULTITASK_META}; is this a model folder of a multitask run?"
        )
    meta = _read_meta(meta_file)
    model_cfg = ModelConfig(trust_remote_code=trust_remote_code)
    backbone = load_backbone(str(model_dir / meta["backbone"]), model_cfg)
    labels = {task["name"]: task["labels"] for task in meta["tasks"]}
    model = MultitaskModel(backbone, labels)
    model.heads.load_state_dict(load_file(str(model_dir / meta["heads_file"])))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    return model.eval(), tokenizer, meta


def _read_meta(path: Path) -> dict[str, Any]:
    """multitask.json with the keys `load_multitask` needs; a damaged or other-version file is named."""
    meta = read_json_object(path, "a multitask model's metadata")
    missing = [k for k in ("backbone", "heads_file", "tasks") if k not in meta]
    if missing:
        raise ValueError(
            f"{path}: no {', '.join(missing)} (not a multitask model's metadata, or another version)"
        )
    return meta
