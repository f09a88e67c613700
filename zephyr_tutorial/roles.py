"""Who plays which part: the teacher (notebook 02), the judges (01, 04, 06), the completion pool (04), and the
model a stage's result is compared against.

The paper's data came from stronger models than the one it trained: GPT-3.5-turbo wrote UltraChat's dialogues,
GPT-4 rated UltraFeedback's completions and judged MT-Bench and AlpacaEval, and UltraFeedback's pool held 17 chat
models. Mistral-7B *base* cannot stand in for them: it has no chat template and does not follow a judging
instruction. So the GPU profiles cast open instruct models, in 4-bit beside the trained model, and any role can go to
an OpenAI-compatible endpoint instead (GPT-4 itself, or a larger model under ``vllm serve``); the ``cpu`` profile
keeps the embedded model in every role. The defaults are the profile's ``roles`` fields
(:class:`~zephyr_tutorial.profiles.RolesSpec`), the environment variables are read by
:func:`~zephyr_tutorial.profiles.role_choice`:

======================  ===========================================  =========================================
role                    default (``t4`` / ``gpu24``)                 endpoint instead
======================  ===========================================  =========================================
teacher                 Qwen2.5-7B-Instruct                          ``ZEPHYR_TEACHER_MODEL`` [+ ``_BASE_URL``]
judge                   Qwen2.5-7B-Instruct / Qwen2.5-14B-Instruct   ``ZEPHYR_JUDGE_MODEL`` [+ ``_BASE_URL``]
pool (+ the SFT model)  Qwen2.5-3B, SmolLM2-1.7B (+ Qwen2.5-7B)      ``ZEPHYR_POOL_MODEL=a,b`` [+ ``_BASE_URL``]
======================  ===========================================  =========================================

The API key comes from ``$OPENAI_API_KEY`` inside :class:`~zephyr_tutorial.backends.OpenAIBackend` and never
reaches a name, a cache key or a printout.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from .backends import ChatBackend, OpenAIBackend, TransformersBackend
from .profiles import (
    DISABLE_ADAPTER,
    EMBEDDED_MODEL,
    Profile,
    role_choice,
    trains_on_gpu,
)


def _load_local(model_id: str, profile: Profile):
    """``(model, tokenizer)`` of a role's local model, with its own chat template (the format it was tuned on)."""
    from .models import load_causal_lm, load_embedded_model

    if model_id == EMBEDDED_MODEL:
        return load_embedded_model()
    return load_causal_lm(
        model_id,
        dtype=profile.model.dtype,
        load_in_4bit=profile.roles.roles_in_4bit,
        device_map="auto" if trains_on_gpu(profile) else None,
    )


def _plays_the_role(choice, profile: Profile, model) -> bool:
    """Whether ``model`` (the notebook's own, ``profile.model.id``) is the role's model and can be reused."""
    return model is not None and choice.models[0] == profile.model.id


def role_backend(profile: Profile, role: str, *, model=None, tokenizer=None) -> ChatBackend:
    """The chat backend of ``role`` (``teacher`` or ``judge``): its endpoint, or its local model.

    ``model`` and ``tokenizer``: the notebook's own model (``profile.model.id``) when already loaded. It is reused
    when it plays the role (the embedded model on the ``cpu`` profile); otherwise the role's model is loaded, so a
    notebook can pass its model on every profile and a GPU profile still gets its instruct model.
    """
    choice = role_choice(profile, role)
    if choice.endpoint:
        return OpenAIBackend(choice.models[0], base_url=choice.base_url)
    if not _plays_the_role(choice, profile, model):
        model, tokenizer = _load_local(choice.models[0], profile)
    return TransformersBackend(model, tokenizer, batch_size=profile.generation.batch_size, name=choice.models[0])


def load_teacher(profile: Profile, *, model=None, tokenizer=None) -> ChatBackend:
    """The model that writes notebook 02's dialogues (the paper: GPT-3.5-turbo)."""
    return role_backend(profile, "teacher", model=model, tokenizer=tokenizer)


def load_judge(profile: Profile, *, kind: str | None = None, model=None, tokenizer=None, **options):
    """The judge of notebooks 01, 04 and 06 (the paper: GPT-4), with the profile's judging prompts.

    An endpoint is the ``openai`` judge; a local model the ``local`` (generating) judge unless ``kind`` names another
    (``logprob``). The prompts are ``profile.evaluation.pairwise_prompt`` / ``single_prompt`` (the benchmarks' own on
    GPU profiles); ``options`` are further :class:`~zephyr_tutorial.evaluation.JudgeOptions` (``cache_path`` ...).
    ``model``/``tokenizer`` as in :func:`role_backend`: reused only when the notebook's model is the judge's.
    """
    from .evaluation import make_judge

    choice = role_choice(profile, "judge")
    settings = dict(
        prompt=profile.evaluation.pairwise_prompt,
        single_prompt=profile.evaluation.single_prompt,
        batch_size=profile.generation.batch_size,
        max_new_tokens=profile.generation.max_new_tokens,
        seed=profile.seed,
        model_name=choice.models[0],
    )
    settings.update(options)
    if choice.endpoint:
        if kind not in (None, "openai"):
            raise ValueError(f"the judge is the endpoint of {choice.source}; a {kind!r} judge needs a local model")
        return make_judge("openai", base_url=choice.base_url, **settings)
    if not _plays_the_role(choice, profile, model):
        model, tokenizer = _load_local(choice.models[0], profile)
    return make_judge(kind or "local", model=model, tokenizer=tokenizer, **settings)


def _policy_name(model_id: str) -> str:
    return model_id.rstrip("/").rsplit("/", 1)[-1].lower()


def pool_specs(profile: Profile, *, sft_adapter_dir: str | Path | None = None, temperature: float = 0.7) -> list:
    """Notebook 04's completion pool for ``profile``: a list of :class:`~zephyr_tutorial.feedback.PolicySpec`.

    On the ``cpu`` profile, :func:`~zephyr_tutorial.feedback.default_pool` (policies of the embedded model). Elsewhere
    every pool model (local in 4-bit, or the endpoint's models) samples at ``temperature`` under a principle drawn per
    prompt, as UltraFeedback's did; then the SFT model when ``sft_adapter_dir`` holds an adapter, and a weak policy
    (the first half of the first model's answer) so that the judge sees clear failures.
    """
    from .feedback import PolicySpec, default_pool

    choice = role_choice(profile, "pool")
    if not choice.models:
        return default_pool(sft_adapter_dir=sft_adapter_dir)
    pool = []
    for model_id in choice.models:
        if choice.endpoint:
            spec = PolicySpec(
                _policy_name(model_id), "openai", "sample", temperature, model=model_id, base_url=choice.base_url
            )
        else:
            load = {"load_in_4bit": profile.roles.roles_in_4bit, "dtype": profile.model.dtype}
            spec = PolicySpec(_policy_name(model_id), "hub", "sample", temperature, model=model_id, extra=load)
        pool.append(spec)
    if sft_adapter_dir is not None and (Path(sft_adapter_dir) / "adapter_config.json").is_file():
        pool.append(PolicySpec("sft", "sft", "sample", temperature, model=str(sft_adapter_dir)))
    pool.append(PolicySpec("truncated", "truncated", None, source=pool[0].name, truncate_fraction=0.5))
    return pool


@contextmanager
def model_before_training(profile: Profile, trained_model):
    """The model that answers "before" in a before/after comparison of a stage, as ``profile.model.before_after``
    says: the trained model with its adapter switched off, so no second copy of the base is loaded (every LoRA
    profile, ``cpu`` included). Full fine-tuning has no adapter: its base answers must be generated before training
    starts, and asking here raises ``ValueError`` saying so. The "after" answers come from ``trained_model`` itself."""
    mode = profile.model.before_after
    if mode == DISABLE_ADAPTER:
        if not hasattr(trained_model, "disable_adapter"):
            raise ValueError(f"profile {profile.name!r} compares by disabling the adapter, but the model has none")
        with trained_model.disable_adapter():
            yield trained_model
    else:
        raise ValueError(
            f"profile {profile.name!r} compares by {mode!r}: generate the base model's answers before training starts"
            " (full fine-tuning has no adapter to disable, and a second copy of the model would double its memory)"
        )
