import json
import subprocess
import sys

import pytest

from training.config import Config, load_config, set_dotted
from basics.errors import UserError


def test_defaults_are_the_paper_model():
    c = Config()
    assert c.features.context_frames * c.features.num_mel_bins == 1536
    assert c.model.name == "ffnn" and c.model.hidden_layers == 4 and c.model.hidden_units == 128


def test_yaml_and_unknown_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  keyword: hey\nmodel:\n  hidden_units: 64\n")
    c = load_config(p)
    assert c.data.keyword == "hey" and c.model.hidden_units == 64
    p.write_text("data:\n  keywrd: hey\n")
    with pytest.raises(UserError, match="data.keywrd"):
        load_config(p)
    p.write_text("nonsense:\n  a: 1\n")
    with pytest.raises(UserError, match="unknown section 'nonsense'"):
        load_config(p)
    with pytest.raises(UserError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_types_are_checked():
    c = Config()
    set_dotted(c, "train.epochs", "7")
    assert c.train.epochs == 7
    with pytest.raises(UserError, match="train.epochs must be int"):
        set_dotted(c, "train.epochs", "seven")
    set_dotted(c, "quant.layer_bits", "8,4,4")
    assert c.quant.layer_bits == [8, 4, 4]
    # the files' YAML list form on the command line: a list, not a folder named "[data/mine]"
    set_dotted(c, "quant.layer_bits", "[8, 4, 8]")
    assert c.quant.layer_bits == [8, 4, 8]
    set_dotted(c, "data.positive_dirs", "[data/mine, data/more]")
    assert c.data.positive_dirs == ["data/mine", "data/more"]
    set_dotted(c, "data.negative_dirs", "data/a,data/b")
    assert c.data.negative_dirs == ["data/a", "data/b"]


def test_roundtrip_json(tmp_path):
    c = Config()
    c.data.keyword = "jarvis"
    c.save(tmp_path / "c.json")
    assert Config.from_dict(json.loads((tmp_path / "c.json").read_text())).to_dict() == c.to_dict()


def test_train_cli_rejects_unknown_key_in_one_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  epoch: 3\n")
    r = subprocess.run([sys.executable, "training/train.py", "--config", str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "train.epoch" in r.stderr and "Traceback" not in r.stderr


def test_train_help_documents_every_key():
    r = subprocess.run([sys.executable, "training/train.py", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for key in ("data.keyword", "train.epochs", "quant.weight_bits", "eval.refractory_s", "features.context_stride"):
        assert key in r.stdout


def test_distillation_and_sentence_keys_are_checked():
    import pytest

    from basics.errors import UserError
    from training.config import Config, set_dotted

    c = Config()
    set_dotted(c, "quant.distill", "0.5", "--set")
    set_dotted(c, "data.sentences", "400", "--set")
    assert c.quant.distill == 0.5 and c.data.sentences == 400
    for key, value in (("quant.distill", "1.5"), ("quant.distill", "nan"), ("data.sentences", "-1"),
                       ("data.sentences_weight", "-2")):
        with pytest.raises(UserError, match=key.replace(".", r"\.")):
            set_dotted(Config(), key, value, "--set")
