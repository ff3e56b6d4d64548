from pathlib import Path

import pydantic
import pytest

from lanner.core import ConfigError, Section, load_config, save_config


class Optimizer(Section):
    name: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9


class Training(Section):
    epochs: int = 10
    batch_size: int = 16
    optimizer: Optimizer = Optimizer()


class Dataset(Section):
    root: str
    classes: list[str] = []


class Spec(Section):
    dataset: Dataset
    training: Training = Training()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


GOOD = """\
dataset:
  root: data/
  classes: [car, person]
training:
  epochs: 3
  optimizer:
    learning_rate: 0.1
"""


def test_defaults_file_then_overrides(tmp_path):
    spec = load_config(Spec, write(tmp_path, GOOD), overrides=["training.optimizer.momentum=0.5", "training.epochs=7"])
    assert spec.dataset.classes == ["car", "person"]
    assert spec.training.epochs == 7
    assert spec.training.batch_size == 16
    assert spec.training.optimizer.learning_rate == 0.1
    assert spec.training.optimizer.momentum == 0.5


def test_override_parses_yaml_values(tmp_path):
    spec = load_config(Spec, write(tmp_path, GOOD), overrides=["dataset.classes=[a, b, c]"])
    assert spec.dataset.classes == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        # a typo in a nested key: file, line, key path and the nearest valid key
        (
            GOOD.replace("learning_rate", "lerning_rate"),
            [],
            "spec.yaml:7: training.optimizer.lerning_rate: unknown key; did you mean 'learning_rate'?",
        ),
        # a typo in a section name
        (GOOD.replace("training:", "trainig:"), [], "spec.yaml:4: trainig: unknown key; did you mean 'training'?"),
        # a wrong type names the line of the value
        (
            GOOD.replace("epochs: 3", "epochs: three"),
            [],
            "spec.yaml:5: training.epochs: Input should be a valid integer",
        ),
        # a required key missing
        ("training:\n  epochs: 2\n", [], "dataset: required key is missing"),
        # an override with a typo is reported as coming from --set
        (GOOD, ["training.epoch=3"], "--set training.epoch=3: training.epoch: unknown key; did you mean 'epochs'?"),
        # an override without '='
        (GOOD, ["training.epochs"], "has no '='"),
        # an override that descends into a value
        (GOOD, ["training.epochs.x=1"], "is a value, not a section"),
        # broken YAML names its line
        ("dataset:\n  root: [unclosed\n", [], "spec.yaml:3: invalid YAML"),
        # a key given twice
        ("dataset:\n  root: a\n  root: b\n", [], "spec.yaml:3: key 'dataset.root' appears twice"),
        # the file is a list, not a mapping
        ("- a\n- b\n", [], "must be a mapping"),
    ],
)
def test_config_errors_name_file_line_key_and_fix(tmp_path, text, overrides, expected):
    with pytest.raises(ConfigError) as info:
        load_config(Spec, write(tmp_path, text), overrides=overrides)
    assert expected in str(info.value)


def test_every_error_is_reported(tmp_path):
    text = GOOD.replace("epochs: 3", "epochs: x").replace("learning_rate", "lr")
    with pytest.raises(ConfigError) as info:
        load_config(Spec, write(tmp_path, text))
    message = str(info.value)
    assert "training.epochs" in message and "training.optimizer.lr" in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Spec, tmp_path / "nope.yaml")


def test_unknown_key_without_close_match_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match="valid keys here: epochs, batch_size, optimizer"):
        load_config(Spec, write(tmp_path, GOOD), overrides=["training.zzzzzz=1"])


def test_saved_config_loads_back(tmp_path):
    spec = load_config(Spec, write(tmp_path, GOOD), overrides=["training.epochs=4"])
    saved = save_config(spec, tmp_path / "results" / "resolved.yaml")
    assert load_config(Spec, saved) == spec


def test_assignment_is_validated():
    spec = load_config(Spec, data={"dataset": {"root": "x"}})
    with pytest.raises(ValueError):
        spec.training.epochs = "many"


def test_unknown_key_inside_a_tagged_union_names_the_yaml_path_and_suggests(tmp_path):
    from typing import Annotated, Literal

    from pydantic import Field

    class Redis(Section):
        type: Literal["redis"] = "redis"
        maxlen: int = 1000

    class Jsonl(Section):
        type: Literal["jsonl"] = "jsonl"
        path: str = "out.jsonl"

    class Pipeline(Section):
        sinks: list[Annotated[Redis | Jsonl, Field(discriminator="type")]] = []

    path = write(tmp_path, "sinks:\n  - type: jsonl\n  - type: redis\n    maxln: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(Pipeline, path)
    message = str(info.value)
    assert "spec.yaml:4" in message and "sinks.1.maxln" in message and "did you mean 'maxlen'" in message


class Checked(Section):
    """A section whose own checks raise ConfigError (as lanner's sections do) or ValueError."""

    size: int = 1
    low: float = 0.1
    high: float = 0.5

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> "Checked":
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    @pydantic.field_validator("size")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 0:
            raise ConfigError(f"size={value} is invalid", where="size", fix="use a positive number")
        return value


class Outer(Section):
    checked: Checked = Checked()


def test_binary_file_and_folder_are_one_line_errors(tmp_path: Path) -> None:
    binary = tmp_path / "spec.yaml"
    binary.write_bytes(b"\x89PNG\x00\xff\xfe")
    with pytest.raises(ConfigError, match=r"spec.yaml: not a text file \(byte 0 is not UTF-8\); pass the YAML"):
        load_config(Spec, binary)
    with pytest.raises(ConfigError, match="is a folder, not a config file"):
        load_config(Spec, tmp_path)


def test_several_mistakes_give_one_complete_line_each(tmp_path: Path) -> None:
    path = write(tmp_path, "dataset: {root: d, clases: [a], rot: x}\n")
    with pytest.raises(ConfigError) as info:
        load_config(Spec, path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2 and all(line.count("did you mean") == 1 for line in lines)
    assert lines[0].endswith("dataset.clases: unknown key; did you mean 'classes'?")


def test_a_validator_message_is_shown_without_pydantic_wrapping(tmp_path: Path) -> None:
    path = write(tmp_path, "checked:\n  low: 0.6\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    text = str(info.value)
    assert text.startswith(f"{path}:1: checked: low (0.6) must be below high (0.5)")
    assert "Value error" not in text and "got {" not in text


def test_a_config_error_from_a_check_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "checked: {size: -3}\n")
    with pytest.raises(ConfigError, match=r"spec.yaml.*size=-3 is invalid; use a positive number"):
        load_config(Outer, path)


def test_data_from_elsewhere_is_named_by_source() -> None:
    with pytest.raises(ConfigError, match=r"^app\.txt \(as imported\): size: size=-3 is invalid"):
        load_config(Outer, data={"checked": {"size": -3}}, source="app.txt (as imported)")
    with pytest.raises(ConfigError, match=r"^app\.txt \(as imported\): checked: low \(0\.6\) must be below"):
        load_config(Outer, data={"checked": {"low": 0.6}}, source="app.txt (as imported)")
