"""Every rule sdlint has, listed explicitly: importing a rule module registers nothing.

Integrity rules (SD0xx) read headers only; model rules (SD1xx) report the expected model's verdict
(for a PEFT adapter, peft's verdict on its base model). SD109 is unused.
A model rule and its fixes live in one module, named after the rule.
"""

from __future__ import annotations

from sdlint.rule import Rule
from sdlint.rules.adapter_shape_mismatch import adapter_shape_mismatch
from sdlint.rules.adapter_target_not_found import adapter_target_not_found
from sdlint.rules.base_shape_mismatch import base_shape_mismatch
from sdlint.rules.dtype_differs import dtype_differs
from sdlint.rules.empty_adapter_tensors import empty_adapter_tensors
from sdlint.rules.head_size_mismatch import head_size_mismatch
from sdlint.rules.integrity import (
    git_lfs_pointer,
    inconsistent_shard_index,
    invalid_data_layout,
    invalid_tensor_entry,
    unreadable_header,
)
from sdlint.rules.key_prefix_mismatch import key_prefix_mismatch
from sdlint.rules.missing_key import missing_key
from sdlint.rules.model_checks_skipped import model_checks_skipped
from sdlint.rules.model_config_unusable import model_config_unusable
from sdlint.rules.pickle import (
    invalid_pickle_storage,
    not_a_state_dict,
    pickle_checkpoint,
    unreadable_pickle,
    unsafe_pickle,
)
from sdlint.rules.unexpected_key import unexpected_key

RULES: tuple[Rule, ...] = (
    unreadable_header,  # SD001
    invalid_tensor_entry,  # SD002
    invalid_data_layout,  # SD003
    inconsistent_shard_index,  # SD004
    git_lfs_pointer,  # SD005
    unsafe_pickle,  # SD006
    unreadable_pickle,  # SD007
    invalid_pickle_storage,  # SD008
    not_a_state_dict,  # SD009
    pickle_checkpoint,  # SD010
    head_size_mismatch,  # SD101
    base_shape_mismatch,  # SD102
    missing_key,  # SD103
    unexpected_key,  # SD104
    dtype_differs,  # SD105
    key_prefix_mismatch,  # SD106
    model_config_unusable,  # SD107
    model_checks_skipped,  # SD108
    adapter_shape_mismatch,  # SD110
    adapter_target_not_found,  # SD111
    empty_adapter_tensors,  # SD112
)
