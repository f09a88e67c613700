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
