"""The assistant-only loss mask, exactly as TRL builds it, and the EOS that generation stops on."""

from __future__ import annotations

from zephyr_tutorial import sft
from zephyr_tutorial.profiles import get_profile

from samples import CONVERSATIONS, real_example


def test_trl_batch_trains_on_assistant_tokens_only(tmp_path, tiny_model, zephyr_tokenizer):
    from datasets import Dataset
    from trl import SFTTrainer

    messages = real_example()
    config = sft.sft_config(get_profile("cpu"), {}, tmp_path, max_length=4096)
    trainer = SFTTrainer(
        model=tiny_model,
        args=config,
        train_dataset=Dataset.from_list([{"messages": messages}]),
        processing_class=zephyr_tokenizer,
    )
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


def test_the_end_of_turn_sft_trains_is_not_one_the_stand_in_already_emits(embedded_model_dir, zephyr_tokenizer):
    from transformers import GenerationConfig

    from zephyr_tutorial.chat_template import END_OF_TURN_TOKEN

    # The template appends the end-of-turn token to every reply, and generation stops on the tokenizer's id of it
    # (tests/test_backends.py). It must not be the stand-in's own EOS (<|im_end|>, which its ChatML training taught
    # it to emit): like Mistral base with </s>, the model has to learn in SFT where a Zephyr answer ends.
    own_eos = GenerationConfig.from_pretrained(embedded_model_dir).eos_token_id
    own_eos = own_eos if isinstance(own_eos, list) else [own_eos]
    trained = [text for text, is_trained in sft.loss_mask_view(zephyr_tokenizer, CONVERSATIONS[0]) if is_trained]
    assert trained[-1] == zephyr_tokenizer.eos_token == END_OF_TURN_TOKEN
    assert zephyr_tokenizer.eos_token_id not in own_eos


def test_fit_to_length_leaves_out_rows_that_would_lose_their_end_token(zephyr_tokenizer):
    from datasets import Dataset

    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    long = [{"role": "user", "content": "Tell me a story."}, {"role": "assistant", "content": "Once upon a time " * 40}]
    dataset = Dataset.from_list([{"messages": short}, {"messages": long}, {"messages": short}])
    limit = len(sft.assistant_token_mask(zephyr_tokenizer, short)[0])
    kept, report = sft.fit_to_length(dataset, zephyr_tokenizer, limit)
    assert len(kept) == 2 and report.kept == 2 and report.left_out == 1
    assert report.longest_left_out == len(sft.assistant_token_mask(zephyr_tokenizer, long)[0])
    assert "2 of 3 rows fit" in str(report)
    everything, report = sft.fit_to_length(dataset, zephyr_tokenizer, 10_000)
    assert len(everything) == 3 and str(report) == "all 3 rows fit in 10000 tokens"
