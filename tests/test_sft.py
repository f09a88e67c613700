"""SFT with QLoRA: loss masking, 4-bit LoRA training, checkpoint resume, adapter load/merge, recipes."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from zephyr_tutorial import sft
from zephyr_tutorial.data import DataError
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.runtime import data_dir

CONVERSATIONS = [
    [{"role": "user", "content": "Name a primary colour."}, {"role": "assistant", "content": "Red is a primary colour."}],
    [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Italy?"},
        {"role": "assistant", "content": "The capital of Italy is Rome."},
    ],
    [{"role": "user", "content": "Count to three."}, {"role": "assistant", "content": "One, two, three."}],
    [{"role": "user", "content": "Say hello in Spanish."}, {"role": "assistant", "content": "Hola."}],
]


def ultrachat_rows(n: int):
    return [
        {"prompt": c[-2]["content"], "prompt_id": f"id{i}", "messages": c}
        for i, c in enumerate(CONVERSATIONS * (n // len(CONVERSATIONS) + 1))
    ][:n]


@pytest.fixture()
def zephyr_tokenizer(embedded_tokenizer):
    return sft.apply_zephyr_template(copy.deepcopy(embedded_tokenizer))


@pytest.fixture()
def tiny_nf4_dir(tmp_path, tiny_model, zephyr_tokenizer):
    """A tiny random model saved to disk, so it can be re-loaded in 4-bit like a real checkpoint."""
    path = tmp_path / "tiny-base"
    tiny_model.save_pretrained(path)
    zephyr_tokenizer.save_pretrained(path)
    return path


def tiny_profile(model_dir, **overrides):
    settings = dict(model_id=str(model_dir), load_in_4bit=True, max_steps=10, per_device_batch_size=2,
                    sft_max_length=128, lora_r=8, lora_alpha=16, lora_dropout=0.0, sft_learning_rate=1e-2)
    settings.update(overrides)
    return get_profile("cpu").with_overrides(**settings)


def dataset(n: int):
    from datasets import Dataset

    return Dataset.from_list([{"messages": row["messages"]} for row in ultrachat_rows(n)])


def real_example():
    """A row of our SFT data when it exists (notebook 02 / data/sft), else a multi-turn fixture conversation."""
    path = data_dir() / "sft" / "train_sft.jsonl"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8").splitlines()[0])["messages"]
    return CONVERSATIONS[1]


def test_trl_batch_trains_on_assistant_tokens_only(tmp_path, tiny_model, zephyr_tokenizer):
    from datasets import Dataset
    from trl import SFTTrainer

    messages = real_example()
    config = sft.sft_config(get_profile("cpu"), tmp_path, max_length=4096)
    trainer = SFTTrainer(model=tiny_model, args=config, train_dataset=Dataset.from_list([{"messages": messages}]),
                         processing_class=zephyr_tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    trained = zephyr_tokenizer.decode(ids[labels != -100])
    eos = zephyr_tokenizer.eos_token
    assert trained == "".join(m["content"] + eos for m in messages if m["role"] == "assistant")
    prompt = zephyr_tokenizer.decode(ids[labels == -100])
    for message in messages:
        if message["role"] != "assistant":
            assert message["content"] in prompt
    assert "<|assistant|>" in prompt  # the role marker is context, not a target
    view = sft.loss_mask_view(zephyr_tokenizer, messages)
    assert [trained for _, trained in view] == (labels != -100).tolist()


def test_qlora_on_tiny_4bit_model_learns_and_logs_throughput(tmp_path, tiny_nf4_dir):
    import bitsandbytes as bnb

    profile = tiny_profile(tiny_nf4_dir)
    model, tokenizer = sft.load_model_for_training(profile)
    assert any(isinstance(module, bnb.nn.Linear4bit) for module in model.modules())
    config = model.base_model.model.config
    per_layer = profile.lora_r * (
        4 * config.hidden_size  # q_proj, o_proj: hidden -> hidden
        + 2 * (config.hidden_size + config.num_key_value_heads * config.head_dim)  # k_proj, v_proj
        + 3 * (config.hidden_size + config.intermediate_size)  # gate, up, down
    )
    assert sft.count_parameters(model)["trainable"] == config.num_hidden_layers * per_layer

    from datasets import Dataset

    one_conversation = Dataset.from_list([{"messages": CONVERSATIONS[0]}] * 2 * profile.max_steps)
    trainer, adapter = sft.train_sft(profile, one_conversation, model=model, tokenizer=tokenizer,
                                     run_dir=tmp_path / "run", adapter_dir=tmp_path / "adapter",
                                     lr_scheduler_type="constant")
    curves = sft.training_curves(trainer)
    assert len(curves["loss"]) == profile.max_steps
    assert curves["loss"][-1] < curves["loss"][0] - 0.5  # the random 4-bit model starts at ~ln(49152) = 10.8
    assert all(rate > 0 for rate in curves["tokens_per_second"][1:])
    assert (adapter / "adapter_config.json").is_file() and (adapter / "tokenizer_config.json").is_file()


def test_interrupted_run_resumes_from_last_checkpoint(tmp_path, tiny_nf4_dir):
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise KeyboardInterrupt("simulated Ctrl-C")

    class CountSteps(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            CountSteps.steps += 1

    profile = tiny_profile(tiny_nf4_dir, max_steps=8)
    options = dict(run_dir=tmp_path / "run", adapter_dir=tmp_path / "adapter", save_steps=4)
    with pytest.raises(KeyboardInterrupt):
        sft.train_sft(profile, dataset(32), callbacks=[Interrupt()], **options)
    assert (tmp_path / "run" / "checkpoint-4").is_dir() and not (tmp_path / "adapter").exists()

    trainer, adapter = sft.train_sft(profile, dataset(32), callbacks=[CountSteps()], **options)
    assert trainer.state.global_step == 8
    assert CountSteps.steps == 4  # steps 5..8 only: 1..4 came from the checkpoint
    assert [r["step"] for r in trainer.state.log_history if "loss" in r] == list(range(1, 9))


def test_adapter_loads_on_4bit_and_merges_into_dequantized_base(tmp_path, tiny_nf4_dir, zephyr_tokenizer):
    import bitsandbytes as bnb

    profile = tiny_profile(tiny_nf4_dir, max_steps=3)
    _, adapter = sft.train_sft(profile, dataset(12), run_dir=tmp_path / "run", adapter_dir=tmp_path / "adapter")

    quantized, tokenizer = sft.load_sft_model(adapter, profile)
    assert any(isinstance(module, bnb.nn.Linear4bit) for module in quantized.modules())
    assert tokenizer.chat_template == sft.apply_zephyr_template(zephyr_tokenizer).chat_template

    plain, _ = sft.load_sft_model(adapter, profile, quantized=False)
    merged_dir = sft.merge_adapter(adapter, profile, tmp_path / "merged")
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    ids = torch.tensor([zephyr_tokenizer.encode("The capital of France is")])
    with torch.no_grad():
        adapter_logits, merged_logits = plain(ids).logits, merged(ids).logits
    assert torch.allclose(adapter_logits, merged_logits, atol=1e-4)
    with torch.no_grad(), plain.disable_adapter():
        base_logits = plain(ids).logits
    assert not torch.allclose(base_logits, merged_logits, atol=1e-4)  # training moved the weights


def test_load_sft_model_without_adapter_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_sft"):
        sft.load_sft_model(tmp_path, get_profile("cpu"))


def test_local_splits_are_validated_and_capped(tmp_path):
    from zephyr_tutorial.data import write_jsonl

    write_jsonl(tmp_path / "train_sft.jsonl", ultrachat_rows(10))
    write_jsonl(tmp_path / "test_sft.jsonl", ultrachat_rows(3))
    splits = sft.load_sft_splits(get_profile("cpu").with_overrides(max_train_samples=6), tmp_path)
    assert (len(splits["train"]), len(splits["test"])) == (6, 3)
    assert splits["train"][1]["messages"] == CONVERSATIONS[1]

    broken = ultrachat_rows(3)
    broken[2]["messages"] = [{"role": "user", "content": "no answer"}]
    write_jsonl(tmp_path / "train_sft.jsonl", broken)
    with pytest.raises(DataError, match=r"train_sft.jsonl.*3.*messages"):
        sft.load_sft_splits(get_profile("cpu"), tmp_path)


def test_template_adherence_counts_clean_stops():
    from zephyr_tutorial.backends import Completion

    completions = [Completion("Paris.", finish_reason="stop"), Completion("Rome. <|user|>\nAnd", finish_reason="stop"),
                   Completion("one two three four", finish_reason="length"), Completion("Hola.")]
    assert sft.template_adherence(completions) == {"stops_with_eos": 0.75, "no_invented_turns": 0.75}


def test_recipe_overrides_go_to_profile_or_trainer(tmp_path):
    recipe = sft.load_recipe(sft.DEFAULT_RECIPE, {"max_steps": 5, "lr_scheduler_type": "linear"})
    assert recipe["profile"] == "cpu"
    assert recipe["profile_overrides"]["max_steps"] == 5
    assert recipe["trainer"]["lr_scheduler_type"] == "linear"
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: cpu\nepochs: 3\n")
    with pytest.raises(ValueError, match="epochs"):
        sft.load_recipe(bad)


def test_cli_parses_config_and_overrides():
    from zephyr_tutorial.cli import build_parser

    args = build_parser().parse_args(["sft", "--config", str(sft.DEFAULT_RECIPE), "--max_steps", "3",
                                      "--sft_learning_rate", "2e-4", "--packing", "true"])
    assert args.handler.__name__ == "_sft_command"
    assert (args.max_steps, args.sft_learning_rate, args.packing, args.lora_r) == (3, 2e-4, True, None)


def test_gpu_config_uses_paged_8bit_adam_and_bf16(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("paged optimizers and bf16 compute are CUDA-only; this machine has no GPU")
    config = sft.sft_config(get_profile("colab"), tmp_path)
    assert config.optim == "paged_adamw_8bit" and config.bf16 and not math.isnan(config.learning_rate)


def test_plots_show_the_curves_and_memory_parts():
    from zephyr_tutorial.memory import MISTRAL_7B, estimate_training_memory
    from zephyr_tutorial.plots import plot_memory_breakdown, plot_sft_curves

    curves = {"step": [1, 2, 3], "loss": [2.0, 1.5, 1.2], "mean_token_accuracy": [0.3, 0.4, 0.5]}
    figure = plot_sft_curves(curves)
    assert list(figure.axes[0].lines[0].get_ydata()) == curves["loss"]
    estimates = {m: estimate_training_memory(MISTRAL_7B, m, seq_len=512, batch_size=1) for m in ("lora", "qlora")}
    figure = plot_memory_breakdown(estimates)
    heights = [sum(p.get_height() for p in c.patches) for c in figure.axes[0].containers]
    assert sum(heights) == pytest.approx(sum(e.total for e in estimates.values()) / 2**30)


def test_generation_stops_on_the_token_id_that_sft_trains_as_eos(embedded_model_dir, zephyr_tokenizer):
    from transformers import GenerationConfig

    # The template appends tokenizer.eos_token to every reply; generate() stops on generation_config.eos_token_id.
    # SmolLM2 has two candidates (<|im_end|>, <|endoftext|>): if these differed, a model that learned to end its
    # answers would never be stopped.
    stop_ids = GenerationConfig.from_pretrained(embedded_model_dir).eos_token_id
    stop_ids = stop_ids if isinstance(stop_ids, list) else [stop_ids]
    trained = [text for text, is_trained in sft.loss_mask_view(zephyr_tokenizer, CONVERSATIONS[0]) if is_trained]
    assert trained[-1] == zephyr_tokenizer.eos_token
    assert zephyr_tokenizer.convert_tokens_to_ids(trained[-1]) in stop_ids


def test_reply_lengths_follow_the_assistant_mask_and_size_the_budget(zephyr_tokenizer):
    messages = real_example()
    lengths = sft.reply_token_lengths(zephyr_tokenizer, [messages, CONVERSATIONS[1]])
    replies = [m["content"] for m in messages + CONVERSATIONS[1] if m["role"] == "assistant"]
    assert lengths == [len(zephyr_tokenizer.encode(r + zephyr_tokenizer.eos_token, add_special_tokens=False))
                       for r in replies]
    assert sum(lengths[:-2]) == sum(trained for _, trained in sft.loss_mask_view(zephyr_tokenizer, messages))
    assert sft.reply_token_lengths(zephyr_tokenizer, [messages] * 5, limit=2) == lengths[:-2] * 2

    assert sft.answer_budget([10, 40]) == 64  # 1.5 x 40 = 60, rounded up to a multiple of 16
    assert sft.answer_budget([10, 40], headroom=1.0, multiple=1) == 40
    assert sft.answer_budget([10, 400], cap=512) == 512
    with pytest.raises(ValueError, match="no assistant replies"):
        sft.answer_budget([])


def test_ended_within_reads_the_stop_rate_at_every_budget():
    from zephyr_tutorial.backends import Completion

    answers = [Completion("a", completion_tokens=5, finish_reason="stop"),
               Completion("b", completion_tokens=30, finish_reason="stop"),
               Completion("c", completion_tokens=64, finish_reason="length")]
    assert sft.ended_within(answers, [4, 5, 29, 30, 1000]) == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert sft.ended_within([3, 8, 8, 20], [2, 8, 20]) == [0.0, 0.75, 1.0]  # reference lengths always end


def test_a_model_that_learned_to_stop_is_cut_by_a_short_budget_and_stops_with_the_data_budget(zephyr_tokenizer):
    """The notebook-03 regression: after SFT the answers got as long as the training replies, and a fixed
    64-token budget reported them as "did not stop". Here a tiny model memorises one 24-token reply."""
    from datasets import Dataset

    from zephyr_tutorial.models import build_tiny_model

    reply = ("The river starts in the northern hills, flows south past three towns and ends in Lake Amber "
             "after forty kilometres.")
    conversation = [{"role": "user", "content": "Describe the river."}, {"role": "assistant", "content": reply}]
    (length,) = sft.reply_token_lengths(zephyr_tokenizer, [conversation])
    base = build_tiny_model(zephyr_tokenizer)
    profile = get_profile("cpu").with_overrides(load_in_4bit=False, gradient_checkpointing=False, max_steps=20,
                                                per_device_batch_size=2, lora_r=8, lora_alpha=16, lora_dropout=0.0,
                                                sft_learning_rate=1e-2)
    model, tokenizer = sft.load_model_for_training(profile, model=base, tokenizer=zephyr_tokenizer)
    with model.disable_adapter():
        eos_before = sft.eos_probabilities(model, tokenizer, [conversation])
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sft.train_sft(profile, Dataset.from_list([{"messages": conversation}] * 40), model=model, tokenizer=tokenizer,
                      run_dir=f"{tmp}/run", adapter_dir=f"{tmp}/adapter", lr_scheduler_type="constant",
                      save_strategy="no", disable_tqdm=True)
    model.eval()
    eos_after = sft.eos_probabilities(model, tokenizer, [conversation])
    # The tiny model's logits stay nearly flat (tied embeddings of std 0.02), so p(EOS) stays near 1/vocabulary in
    # absolute terms; what training changes is where EOS ranks. Absolute values are checked on the real model below.
    assert eos_after["at_end"][0] > eos_before["at_end"][0]
    assert eos_after["at_end"][0] > eos_after["inside"][0]  # it learned where the reply ends, not "say EOS"

    budget = sft.answer_budget([length])
    (short,) = sft.generate_answers(model, tokenizer, ["Describe the river."], max_new_tokens=length - 1)
    (full,) = sft.generate_answers(model, tokenizer, ["Describe the river."], max_new_tokens=budget)
    assert (short.finish_reason, full.finish_reason) == ("length", "stop")
    assert full.text == reply and full.completion_tokens == length
    # one long greedy generation gives the stop rate of every smaller budget
    assert sft.ended_within([full], [length - 1, budget]) == [0.0, 1.0]


def test_eos_probabilities_are_high_where_replies_end_and_low_inside(embedded_model_and_tokenizer, zephyr_tokenizer):
    model, _ = embedded_model_and_tokenizer
    # SmolLM2-Instruct already ends its (ChatML) turns with <|im_end|>, the EOS of our Zephyr template too.
    probabilities = sft.eos_probabilities(model, zephyr_tokenizer, CONVERSATIONS)
    assert len(probabilities["at_end"]) == len(probabilities["inside"]) == 5  # one per assistant reply
    assert sorted(probabilities["at_end"])[2] > 0.2
    assert max(probabilities["inside"]) < 0.05


def test_answer_endings_plot_draws_one_step_curve_per_label_and_the_marked_budgets():
    from zephyr_tutorial.plots.sft import plot_answer_endings

    budgets = range(1, 9)
    shares = {"training replies": sft.ended_within([2, 5], budgets), "after SFT": sft.ended_within([3, 8], budgets)}
    figure = plot_answer_endings(budgets, shares, {"default budget": 4})
    lines = figure.axes[0].lines
    assert [line.get_label() for line in lines] == ["training replies", "after SFT", "default budget"]
    assert list(lines[0].get_ydata()) == [0.0, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert list(lines[2].get_xdata()) == [4, 4]
