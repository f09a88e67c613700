"""The DPO loss from scratch: formulas, gradients, masking, and parity with TRL's DPOTrainer."""

import math

import pytest
import torch

from zephyr_tutorial.dpo import (
    collate_preferences,
    completion_lengths,
    conservative_dpo_loss,
    conservative_optimal_margin,
    dpo_gradient_weight,
    dpo_loss,
    loss_gradient_on_margin,
    pair_logprobs,
    policy_and_reference_logprobs,
    preference_loss,
    reference_model,
    sequence_logprobs,
    tokenize_preference,
)
from zephyr_tutorial.dpo.data import preference_dataset, read_preferences, to_trl_preference


def pair(question, good, bad, i=0):
    user = {"role": "user", "content": question}
    return {
        "prompt": question, "prompt_id": f"p{i}",
        "chosen": [user, {"role": "assistant", "content": good}],
        "rejected": [user, {"role": "assistant", "content": bad}],
        "score_chosen": 8.0, "score_rejected": 3.0,
    }


ROWS = [
    pair("What is the capital of France?", "Paris is the capital of France.", "I don't know.", 0),
    pair("Name a prime number.", "7 is prime: only 1 and 7 divide it.", "Nine.", 1),
    pair("Say hi", "Hello! How can I help you today?", "no", 2),
    pair("What is 2+2?", "4", "The answer is 5, obviously, as everyone knows.", 3),
]


@pytest.fixture(scope="module")
def zephyr_tokenizer(embedded_model_dir):
    from transformers import AutoTokenizer

    from zephyr_tutorial.chat_template import apply_zephyr_template

    return apply_zephyr_template(AutoTokenizer.from_pretrained(embedded_model_dir))


def test_dpo_loss_matches_the_formula_on_numbers():
    out = dpo_loss(torch.tensor([-10.0, -4.0]), torch.tensor([-12.0, -3.0]),
                   torch.tensor([-11.0, -4.0]), torch.tensor([-11.0, -5.0]), beta=0.5)
    # pair 1: h = (1) - (-1) = 2 ; pair 2: h = 0 - 2 = -2
    expected = [-math.log(1 / (1 + math.exp(-1.0))), -math.log(1 / (1 + math.exp(1.0)))]
    assert out.losses.tolist() == pytest.approx(expected, rel=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([0.5, 0.0])
    assert out.rejected_rewards.tolist() == pytest.approx([-0.5, 1.0])
    assert out.reward_accuracy == 0.5
    assert out.margins.tolist() == pytest.approx([1.0, -1.0])


def test_loss_is_log2_when_policy_equals_reference():
    logps = torch.randn(6)
    assert dpo_loss(logps, logps - 3, logps, logps - 3, beta=0.1).loss.item() == pytest.approx(math.log(2))


def test_gradient_weight_formula_equals_autograd():
    torch.manual_seed(0)
    beta = 0.3
    chosen = (torch.randn(16) * 5).requires_grad_()
    rejected = (torch.randn(16) * 5).requires_grad_()
    ref_chosen, ref_rejected = torch.randn(16) * 5, torch.randn(16) * 5
    out = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=beta)
    out.losses.sum().backward()
    weight = dpo_gradient_weight((chosen - ref_chosen) - (rejected - ref_rejected), beta).detach()
    # dL/dlogpi(y_w) = -beta * sigma(r_l - r_w), dL/dlogpi(y_l) = +beta * sigma(r_l - r_w)
    assert torch.allclose(chosen.grad, -beta * weight, atol=1e-6)
    assert torch.allclose(rejected.grad, beta * weight, atol=1e-6)
    assert torch.allclose(weight, torch.sigmoid(out.rejected_rewards - out.chosen_rewards), atol=1e-6)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge", "conservative"])
def test_closed_form_margin_gradient_equals_autograd(loss_type):
    margin = torch.linspace(-30, 30, 241, dtype=torch.float64).requires_grad_()
    preference_loss(margin, 0.2, loss_type, label_smoothing=0.1).sum().backward()
    closed = loss_gradient_on_margin(margin.detach(), 0.2, loss_type, label_smoothing=0.1)
    keep = (0.2 * margin.detach() - 1).abs() > 1e-9  # the hinge's kink
    assert torch.allclose(-margin.grad[keep], closed[keep], atol=1e-9)


def test_variants_have_their_characteristic_shape():
    beta = 0.5
    h = torch.tensor([0.0, 1 / (2 * beta), 1 / beta, 10.0])
    assert preference_loss(h, beta, "ipo")[1].item() == 0.0  # IPO's target margin 1/(2 beta)
    assert preference_loss(h, beta, "hinge")[2:].tolist() == [0.0, 0.0]  # no loss beyond beta*h = 1
    assert torch.allclose(conservative_dpo_loss(h, beta, 0.0), preference_loss(h, beta, "sigmoid"))
    grid = torch.linspace(-20, 40, 60001)
    best = grid[conservative_dpo_loss(grid, beta, 0.1).argmin()].item()
    assert best == pytest.approx(conservative_optimal_margin(beta, 0.1), abs=1e-2)
    with pytest.raises(ValueError, match="label_smoothing"):
        conservative_dpo_loss(h, beta, 0.5)
    with pytest.raises(ValueError, match="unknown loss_type"):
        preference_loss(h, beta, "kto")


def test_sequence_logprobs_sum_completion_tokens_only(tiny_model, zephyr_tokenizer):
    tokens = [tokenize_preference(zephyr_tokenizer, r["chosen"][:-1], r["chosen"][-1:], r["rejected"][-1:]) for r in ROWS]
    batch = collate_preferences(tokens, zephyr_tokenizer.pad_token_id)
    with torch.no_grad():
        chosen, rejected = pair_logprobs(tiny_model, batch)
        # by hand, one unpadded sequence at a time
        for row, example in enumerate(tokens):
            ids = torch.tensor([example["prompt_ids"] + example["chosen_ids"]])
            log_probs = torch.log_softmax(tiny_model(input_ids=ids).logits[0], dim=-1)
            start = len(example["prompt_ids"])
            manual = sum(log_probs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))
            assert chosen[row].item() == pytest.approx(manual, abs=1e-4)
        # changing prompt tokens' targets is irrelevant only through the mask: zero mask -> zero log-prob
        empty = dict(batch, completion_mask=torch.zeros_like(batch["completion_mask"]))
        assert sequence_logprobs(tiny_model, **empty).abs().max().item() == 0.0
    assert rejected.shape == (len(ROWS),)


def test_tokenized_completion_ends_with_the_end_of_turn(zephyr_tokenizer):
    example = tokenize_preference(zephyr_tokenizer, ROWS[0]["chosen"][:-1], ROWS[0]["chosen"][-1:], ROWS[0]["rejected"][-1:])
    prompt_text = zephyr_tokenizer.decode(example["prompt_ids"])
    assert prompt_text.endswith("<|assistant|>\n")
    assert zephyr_tokenizer.decode(example["chosen_ids"]) == "Paris is the capital of France." + zephyr_tokenizer.eos_token + "\n"


def test_reference_model_uses_frozen_ref_adapter_or_disables(tiny_model, zephyr_tokenizer):
    from peft import LoraConfig, get_peft_model

    tokens = [tokenize_preference(zephyr_tokenizer, r["chosen"][:-1], r["chosen"][-1:], r["rejected"][-1:]) for r in ROWS]
    batch = collate_preferences(tokens, zephyr_tokenizer.pad_token_id)
    with torch.no_grad():
        base = pair_logprobs(tiny_model, batch)[0]
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(tiny_model, config)
    with torch.no_grad():
        with reference_model(model):  # no "ref" adapter: the base model
            assert torch.allclose(pair_logprobs(model, batch)[0], base, atol=1e-5)
        model.add_adapter("ref", config)  # a frozen copy, as TRL makes for an SFT adapter
        for name, parameter in model.named_parameters():
            if ".ref." in name:
                parameter.data.copy_(model.get_parameter(name.replace(".ref.", ".default.")))
        with_adapter = pair_logprobs(model, batch)[0]
        assert not torch.allclose(with_adapter, base, atol=1e-3)
        with reference_model(model):
            assert torch.allclose(pair_logprobs(model, batch)[0], with_adapter, atol=1e-6)
    assert model.active_adapter == "default"


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
def test_parity_with_trl_dpo_trainer(loss_type, zephyr_tokenizer, tmp_path):
    from trl import DPOConfig, DPOTrainer

    from zephyr_tutorial.models import build_tiny_model

    policy, ref = build_tiny_model(zephyr_tokenizer, seed=0), build_tiny_model(zephyr_tokenizer, seed=1)
    args = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, beta=0.1, loss_type=[loss_type],
                     bf16=False, gradient_checkpointing=False, report_to=[], use_cpu=True, max_length=128)
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=preference_dataset(ROWS),
                         processing_class=zephyr_tokenizer)
    for example, row in zip(trainer.train_dataset, ROWS):  # same tokenization as ours
        ours = tokenize_preference(zephyr_tokenizer, **to_trl_preference(row))
        assert {k: example[k] for k in ours} == ours
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    trl_loss = trainer.compute_loss(trainer.model, batch).item()
    trl_metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}

    chosen_lengths, rejected_lengths = completion_lengths(batch)
    ours = dpo_loss(**policy_and_reference_logprobs(policy, batch, ref_model=ref), beta=0.1, loss_type=loss_type,
                    chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths)
    assert ours.loss.item() == pytest.approx(trl_loss, abs=1e-5, rel=1e-5)
    for name, value in ours.metrics().items():
        if name != "loss":
            assert value == pytest.approx(trl_metrics[name], abs=1e-5), name
    assert abs(ours.metrics()["rewards/margins"]) > 1e-3  # two different random models: a real comparison


def test_preference_rows_are_validated(tmp_path):
    import json

    from zephyr_tutorial.data import DataError

    good, bad = ROWS[0], dict(ROWS[1])
    bad["rejected"] = [{"role": "user", "content": "another question"}, {"role": "assistant", "content": "x"}]
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"line 2, field 'rejected'"):
        read_preferences(path)
    bad = dict(ROWS[1], chosen=[{"role": "user", "content": "q"}])
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"line 1, field 'chosen'.*assistant"):
        read_preferences(path)
    path.write_text(json.dumps(good) + "\n")
    assert to_trl_preference(read_preferences(path)[0])["chosen"] == [good["chosen"][-1]]
