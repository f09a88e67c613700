"""The accelerate launch configs shipped for GPU clusters load in accelerate's own config classes."""

from importlib.resources import files

import pytest
import yaml

CONFIG_DIR = files("zephyr_tutorial") / "recipes" / "accelerate"
CONFIGS = sorted(p.name for p in CONFIG_DIR.iterdir() if p.name.endswith(".yaml"))


def _launch_argument_names() -> set[str]:
    from accelerate.commands.launch import launch_command_parser

    return {action.dest for action in launch_command_parser()._actions}


def test_the_expected_configs_ship_with_the_package():
    assert set(CONFIGS) >= {
        "multi_gpu.yaml",
        "deepspeed_zero3.yaml",
        "deepspeed_zero3_offload.yaml",
        "fsdp.yaml",
        "fsdp_qlora.yaml",
        "cpu_ddp.yaml",
    }


@pytest.mark.parametrize("name", CONFIGS)
def test_config_loads_in_accelerate_and_every_nested_key_is_a_launch_argument(name):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(CONFIG_DIR / name))  # raises on unknown top-level keys
    raw = yaml.safe_load((CONFIG_DIR / name).read_text())
    known = _launch_argument_names()
    # accelerate copies these nested keys onto its launch arguments without checking them: check them here
    for key in raw.get("deepspeed_config", {}):
        assert key in known, f"{name}: deepspeed_config.{key} is not an accelerate launch option"
    for key in raw.get("fsdp_config", {}):
        assert (key if key.startswith("fsdp_") else "fsdp_" + key) in known, f"{name}: fsdp_config.{key} unknown"
    assert config.num_processes >= 2


def test_each_strategy_is_what_its_name_says():
    from accelerate.commands.config.config_args import ClusterConfig

    def load(name):
        return ClusterConfig.from_yaml_file(str(CONFIG_DIR / name))

    assert str(load("multi_gpu.yaml").distributed_type).endswith("MULTI_GPU")
    zero3 = load("deepspeed_zero3.yaml")
    assert zero3.deepspeed_config["zero_stage"] == 3 and zero3.deepspeed_config["offload_param_device"] == "none"
    assert load("deepspeed_zero3_offload.yaml").deepspeed_config["offload_optimizer_device"] == "cpu"
    fsdp = load("fsdp.yaml").fsdp_config
    assert fsdp["fsdp_sharding_strategy"] == "FULL_SHARD" and fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    assert load("fsdp_qlora.yaml").fsdp_config["fsdp_use_orig_params"] is False
    cpu = load("cpu_ddp.yaml")
    # torchrun starts the ranks (see the file's comment); each falls back to CPU and gloo by itself
    assert not cpu.use_cpu and str(cpu.distributed_type).endswith("MULTI_GPU") and cpu.num_processes == 2


def test_a_misspelled_key_is_caught(tmp_path):
    from accelerate.commands.config.config_args import ClusterConfig

    broken = yaml.safe_load((CONFIG_DIR / "fsdp.yaml").read_text())
    broken["num_proceses"] = 2
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(ValueError, match="unknown keys"):
        ClusterConfig.from_yaml_file(str(tmp_path / "broken.yaml"))
    assert "zero_stag" not in _launch_argument_names() and "zero_stage" in _launch_argument_names()


@pytest.mark.parametrize("name", ["deepspeed_zero3.yaml", "deepspeed_zero3_offload.yaml"])
def test_deepspeed_accepts_the_config_accelerate_builds_from_ours(name):
    """accelerate turns our YAML into a DeepSpeed config; DeepSpeed's own (strict) config class must accept it."""
    deepspeed = pytest.importorskip(
        "deepspeed", reason="DeepSpeed is not installed (make setup installs it with --no-build-isolation)"
    )
    from accelerate.utils import DeepSpeedPlugin
    from deepspeed.runtime.config import DeepSpeedConfig

    options = yaml.safe_load((CONFIG_DIR / name).read_text())["deepspeed_config"]
    plugin = DeepSpeedPlugin(
        zero_stage=options["zero_stage"],
        offload_optimizer_device=options["offload_optimizer_device"],
        offload_param_device=options["offload_param_device"],
        zero3_init_flag=False,  # True would wrap model construction; nothing is built here
        zero3_save_16bit_model=options["zero3_save_16bit_model"],
    )
    config = plugin.deepspeed_config
    # The HF trainer fills the "auto" values from TrainingArguments; do the same for one process (world size 1 here).
    config.update(
        train_micro_batch_size_per_gpu=4, gradient_accumulation_steps=4, train_batch_size=4 * 4, gradient_clipping=1.0
    )
    parsed = DeepSpeedConfig(config)
    assert parsed.zero_optimization_stage == 3
    assert str(parsed.zero_config.offload_param.device if parsed.zero_config.offload_param else "none").endswith(
        options["offload_param_device"]
    )
    config["zero_optimization"]["stagee"] = 3
    with pytest.raises(Exception, match="stagee"):
        DeepSpeedConfig(config)
    assert deepspeed.__version__
