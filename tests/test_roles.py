"""Teacher, judge and pool: the profile's models, or an endpoint named by the environment; the "before" model."""

from __future__ import annotations

import pytest
import torch

from zephyr_tutorial import roles
from zephyr_tutorial.backends import OpenAIBackend, SamplingConfig, TransformersBackend
from zephyr_tutorial.evaluation import LLMJudge, LogprobJudge, PairwiseItem
from zephyr_tutorial.evaluation.official import alpaca_eval_template
from zephyr_tutorial.feedback import PolicyBackends, default_pool
from zephyr_tutorial.feedback.pool import check_pool
from zephyr_tutorial.profiles import EMBEDDED_MODEL, get_profile

KEY = "sk-test-key-never-shown"


@pytest.fixture()
def endpoint(monkeypatch, openai_server):
    """Every role behind the fake OpenAI server; the key in $OPENAI_API_KEY."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for role, model in (("TEACHER", "teacher-llm"), ("JUDGE", "judge-llm"), ("POOL", "pool-a,pool-b")):
        monkeypatch.setenv(f"ZEPHYR_{role}_MODEL", model)
        monkeypatch.setenv(f"ZEPHYR_{role}_BASE_URL", openai_server.base_url)
    return openai_server


def test_the_teacher_behind_an_endpoint_answers_and_keeps_the_key_out_of_sight(endpoint):
    teacher = roles.load_teacher(get_profile("t4"))
    assert isinstance(teacher, OpenAIBackend) and teacher.base_url == endpoint.base_url
    reply = teacher.chat([[{"role": "user", "content": "Write a question about tides."}]], SamplingConfig(16))[0]
    assert reply.text == "Echo (teacher-llm): Write a question about tides."
    assert endpoint.authorizations == [f"Bearer {KEY}"]  # sent to the endpoint, and only there
    assert KEY not in teacher.name and KEY not in repr(teacher)


def test_the_gpu_judge_behind_an_endpoint_uses_alpaca_evals_own_prompt(endpoint):
    judge = roles.load_judge(
        get_profile("t4"), single_prompt="mt_bench"
    )  # MT-Bench's files: see test_evaluation_prompts
    assert isinstance(judge, LLMJudge) and judge.prompt == "alpaca_eval_official" and KEY not in judge.name
    report = judge.compare([PairwiseItem("p1", "Name a colour.", "Red.", "A fruit.")], swap=False)
    sent = report.judgments[0].replies[0].removeprefix("Echo (judge-llm): ")
    user_template = alpaca_eval_template()[-1]["content"]
    assert sent.startswith(user_template.split("{instruction}")[0]) and "Name a colour." in sent
    assert report.judgments[0].verdict is None  # an echo is no verdict: counted as a parse failure, not guessed


def test_the_cpu_judge_is_the_embedded_model_with_our_prompts(tiny_model, embedded_tokenizer):
    cpu = get_profile("cpu")
    judge = roles.load_judge(cpu, model=tiny_model, tokenizer=embedded_tokenizer)
    assert isinstance(judge, LLMJudge) and isinstance(judge.backend, TransformersBackend)
    assert (judge.name, judge.prompt, judge.single_prompt) == (EMBEDDED_MODEL, "mt_bench", "mt_bench")
    assert judge.backend.batch_size == cpu.generation.batch_size
    logprob = roles.load_judge(cpu, kind="logprob", model=tiny_model, tokenizer=embedded_tokenizer)
    assert isinstance(logprob, LogprobJudge)


def test_the_notebooks_model_is_reused_only_where_it_plays_the_role(tiny_model, embedded_tokenizer, monkeypatch):
    """Notebook 01 passes its base model to load_judge on every profile: on cpu that model is the judge; on t4 the
    judge is Qwen2.5-7B-Instruct and passing Mistral-7B base must not make Mistral the judge."""
    loaded = []
    monkeypatch.setattr(
        roles, "_load_local", lambda model_id, profile: loaded.append(model_id) or (tiny_model, embedded_tokenizer)
    )
    roles.load_judge(get_profile("cpu"), model=tiny_model, tokenizer=embedded_tokenizer)
    roles.load_teacher(get_profile("cpu"), model=tiny_model, tokenizer=embedded_tokenizer)
    assert loaded == []
    t4 = get_profile("t4")
    roles.load_judge(t4, model=tiny_model, tokenizer=embedded_tokenizer, single_prompt="mt_bench")  # no FastChat files
    roles.load_teacher(t4, model=tiny_model, tokenizer=embedded_tokenizer)
    assert loaded == [t4.roles.judge_model, t4.roles.teacher_model]


def test_an_endpoint_judge_cannot_be_a_logprob_judge(endpoint):
    with pytest.raises(ValueError, match="needs a local model"):
        roles.load_judge(get_profile("cpu"), kind="logprob")


def test_pools_are_the_embedded_policies_on_cpu_and_instruct_models_on_gpu(tmp_path):
    assert roles.pool_specs(get_profile("cpu")) == default_pool()
    adapter = tmp_path / "sft"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    t4 = get_profile("t4")
    pool = roles.pool_specs(t4, sft_adapter_dir=adapter)
    check_pool(pool)
    models = [spec for spec in pool if spec.kind == "hub"]
    assert [spec.model for spec in models] == list(t4.roles.pool_models)
    assert all(s.extra == {"load_in_4bit": True, "dtype": "float16"} and s.principle == "sample" for s in models)
    assert [s.kind for s in pool[len(models) :]] == ["sft", "truncated"] and pool[-1].source == models[0].name
    assert [s.kind for s in roles.pool_specs(t4)][-1] == "truncated" and "sft" not in [
        s.kind for s in roles.pool_specs(t4)
    ]


def test_an_endpoint_pool_is_one_openai_policy_per_named_model(endpoint):
    pool = roles.pool_specs(get_profile("gpu24"))
    assert [(s.name, s.kind, s.base_url) for s in pool[:2]] == [
        ("pool-a", "openai", endpoint.base_url),
        ("pool-b", "openai", endpoint.base_url),
    ]


def test_a_hub_policy_loads_its_model_and_answers(tiny_model_dir):
    from zephyr_tutorial.feedback import PolicySpec

    spec = PolicySpec("tiny", "hub", None, model=str(tiny_model_dir), extra={"load_in_4bit": False, "dtype": "float32"})
    backend = PolicyBackends(batch_size=2)(spec)
    replies = backend.chat([[{"role": "user", "content": "Hi"}]], SamplingConfig(max_new_tokens=4))
    assert backend.name == "tiny" and replies[0].completion_tokens > 0
    with pytest.raises(ValueError, match="kind .hub. needs model"):
        PolicySpec("x", "hub")


def test_before_after_disables_the_adapter_on_gpu_profiles(tiny_model):
    from peft import LoraConfig, get_peft_model

    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        base_logits = tiny_model(input_ids=ids).logits.clone()
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    trained = get_peft_model(tiny_model, config).eval()
    with torch.no_grad():
        trained_logits = trained(input_ids=ids).logits
        with roles.model_before_training(get_profile("t4"), trained) as before:
            assert before is trained  # the same weights: no second copy
            assert torch.allclose(before(input_ids=ids).logits, base_logits, atol=1e-5)
        assert torch.allclose(trained(input_ids=ids).logits, trained_logits)  # the adapter is back on
    assert not torch.allclose(trained_logits, base_logits)
    with pytest.raises(ValueError, match="the model has none"):
        with roles.model_before_training(get_profile("gpu24"), tiny_model):
            pass


def test_before_after_on_cpu_disables_the_adapter_and_full_fine_tuning_says_what_to_do(tiny_model):
    from peft import LoraConfig, get_peft_model

    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        base_logits = tiny_model(input_ids=ids).logits.clone()
        trained = get_peft_model(tiny_model, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
        with roles.model_before_training(get_profile("cpu"), trained) as before:
            assert before is trained  # the one model, no float32 copy loaded beside it
            assert torch.allclose(before(input_ids=ids).logits, base_logits, atol=1e-5)
        assert not torch.allclose(trained(input_ids=ids).logits, base_logits)
    with pytest.raises(ValueError, match="generate the base model's answers before training"):
        with roles.model_before_training(get_profile("full"), tiny_model):
            pass
