"""The ``safeguards`` command line, called in-process through ``main([...])``.

Exit codes: 0 ok, 1 ``check`` found a violation, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import safeguards
from safeguards import cli
from safeguards.cli import main

SPECS = Path(__file__).resolve().parents[1] / "specs"


def run(capsys, *argv):
    """Run the CLI; return (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def jsonl(*steps):
    return "".join(json.dumps(step) + "\n" for step in steps)


LAVA_SPEC = '''spec lava "Stay off lava."
props:
    lava "the agent stands on lava"
    wood "the agent stands on wood"
rule no_lava: ltl G !lava
'''


# --------------------------------------------------------------------------------------------
# version, help, usage


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"safeguards {safeguards.__version__}" == "safeguards 0.1.0"


@pytest.mark.parametrize("argv", [["--help"], ["compile", "--help"], ["check", "--help"]])
def test_help_has_examples(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert "examples:" in out
    assert "safeguards " in out


def test_help_documents_shipped_names_and_exit_codes(capsys):
    _, out, _ = run(capsys, "compile", "--help")
    assert "minecraft/safeguard3" in out
    _, out, _ = run(capsys, "check", "--help")
    assert "exit codes" in out and "unmet" in out


def test_no_command_is_a_usage_error(capsys):
    code, _, err = run(capsys)
    assert code == 2
    assert "usage:" in err


def test_unknown_format(capsys):
    code, out, err = run(capsys, "compile", "minecraft/safeguard0", "--format", "pdf")
    assert code == 2
    assert out == ""
    assert "invalid choice: 'pdf'" in err


def test_spec_and_ltl_are_exclusive(capsys):
    code, _, err = run(capsys, "compile", "minecraft/safeguard0", "--ltl", "G !lava")
    assert code == 2 and "not both" in err
    code, _, err = run(capsys, "compile")
    assert code == 2 and "--ltl" in err
    code, _, err = run(capsys, "check", "--ltl", "G a", "spec.sg", "trace.jsonl")
    assert code == 2 and "not both" in err


def test_picture_formats_need_output(capsys):
    code, _, err = run(capsys, "compile", "--ltl", "G a", "--format", "png")
    assert code == 2
    assert "-o FILE" in err


# --------------------------------------------------------------------------------------------
# compile


def test_compile_text_summary_of_shipped_spec(capsys):
    code, out, err = run(capsys, "compile", "minecraft/safeguard3")
    assert code == 0, err
    assert "spec minecraft_safeguard3" in out
    assert "Avoid hazards until wood" in out
    assert "basalt_lava  the agent stands on basalt lava (hazard)" in out
    assert "safeguard3: machine, finite semantics, penalty 1" in out
    assert "automaton: 6 states, 15 letter classes, initial state 0" in out
    assert "state 0 q0 (initial): presumably_satisfied, accepting" in out
    assert "state 5 violated: violated, rejecting" in out
    assert "-> 5 violated on creeper | basalt_lava" in out
    assert "-> 5 violated on true" in out
    assert "shortest violating trace (1 step):" in out
    assert "step 0: {basalt_lava}" in out or "step 0: {creeper}" in out
    assert "shortest satisfying trace (1 step):" in out


@pytest.mark.parametrize("name", ["minecraft/safeguard0", "minecraft/safeguard0.sg",
                                  "patterns/reach_avoid", "patterns/no_repeat.sg"])
def test_shipped_spec_names_resolve(capsys, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no local file of that name
    code, out, err = run(capsys, "compile", name)
    assert code == 0, err
    assert out.startswith("spec ")


def test_local_path_wins_over_shipped_name(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "minecraft").mkdir()
    (tmp_path / "minecraft" / "safeguard0").write_text(LAVA_SPEC, encoding="utf-8")
    code, out, _ = run(capsys, "compile", "minecraft/safeguard0")
    assert code == 0
    assert out.startswith("spec lava")


def test_compile_spec_path(capsys):
    code, out, _ = run(capsys, "compile", str(SPECS / "patterns" / "absence.sg"))
    assert code == 0
    assert "absence: ltl, finite semantics, penalty 1" in out
    assert "source: ltl G !bad" in out


def test_compile_ltl(capsys):
    code, out, _ = run(capsys, "compile", "--ltl", "G(a -> X b)")
    assert code == 0
    assert "propositions (2):" in out
    assert "formula: ltl, finite semantics, penalty 1" in out
    assert "automaton: 3 states" in out
    assert "shortest violating trace (2 steps):" in out
    assert "step 0: {a}" in out and "step 1: {}" in out


def test_compile_traces_none(capsys):
    code, out, _ = run(capsys, "compile", "--ltl", "true")
    assert code == 0
    assert "shortest violating trace: none: the spec cannot be violated" in out
    code, out, _ = run(capsys, "compile", "--ltl", "a & !a")
    assert code == 0
    assert "shortest satisfying trace: none" in out


def test_compile_infinite_semantics(capsys):
    code, out, _ = run(capsys, "compile", "--ltl", "F a", "--semantics", "infinite")
    assert code == 0
    assert "infinite semantics (guarantee)" in out
    assert "inconclusive" in out


def test_compile_native_backend_limit_is_a_clean_error(capsys):
    code, out, err = run(capsys, "compile", "--ltl", "G F a", "--semantics", "infinite")
    assert code == 2
    assert out == ""
    assert "backend spot" in err and "Traceback" not in err


def test_compile_to_file_is_atomic(capsys, tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    code, out, _ = run(capsys, "compile", "--ltl", "G !lava", "-o", str(target))
    assert code == 0
    assert out == ""
    assert target.read_text(encoding="utf-8").startswith("spec formula")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary left


def test_compile_to_missing_folder(capsys, tmp_path):
    target = tmp_path / "no" / "such" / "out.txt"
    code, _, err = run(capsys, "compile", "--ltl", "G a", "-o", str(target))
    assert code == 2
    assert str(target) in err and "cannot write" in err
    assert "Traceback" not in err


def test_compile_dot(capsys):
    code, out, err = run(capsys, "compile", "minecraft/safeguard1", "--format", "dot")
    assert code == 0, err
    assert "digraph" in out
    assert "->" in out


def test_compile_hoa(capsys):
    code, out, err = run(capsys, "compile", "patterns/absence", "--format", "hoa")
    assert code == 0, err
    assert out.startswith("HOA: v1")
    assert "--END--" in out


def test_compile_json(capsys, tmp_path):
    code, out, err = run(capsys, "compile", "minecraft/safeguard2", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["name"] == "minecraft_safeguard2"
    target = tmp_path / "sg.json"
    code, out, _ = run(capsys, "compile", "minecraft/safeguard2", "-f", "json", "-o", str(target))
    assert code == 0 and out == ""
    assert json.loads(target.read_text(encoding="utf-8")) == doc


# --------------------------------------------------------------------------------------------
# spec errors: file:line:col, the line, a caret, a hint; exit 2, no traceback


def test_unknown_proposition_did_you_mean(capsys, tmp_path):
    path = write(tmp_path, "typo.sg", LAVA_SPEC.replace("G !lava", "G !lva"))
    code, out, err = run(capsys, "compile", path)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{path}:5:22: error: unknown proposition `lva`"
    assert lines[1] == "    rule no_lava: ltl G !lva"
    assert lines[2] == "    " + " " * 21 + "^^^"
    assert "did you mean `lava`" in err
    assert "Traceback" not in err


def test_ltl_option_errors_show_the_formula(capsys):
    code, _, err = run(capsys, "compile", "--ltl", "G (a -> ")
    assert code == 2
    assert err.startswith("--ltl:1:")
    assert "    G (a -> " in err
    assert "^" in err


def test_lowercase_temporal_operator_at_end(capsys, tmp_path):
    path = write(tmp_path, "x.sg", LAVA_SPEC.replace("G !lava", "G !lava x"))
    code, _, err = run(capsys, "compile", path)
    assert code == 2
    assert f"{path}:5:" in err
    assert "uppercase" in err and "`X`" in err


def test_lowercase_x_before_operand_hints_uppercase(capsys, tmp_path):
    path = write(tmp_path, "x.sg", LAVA_SPEC.replace("G !lava", "x lava"))
    code, _, err = run(capsys, "compile", path)
    assert code == 2
    assert f"{path}:5:" in err
    assert "uppercase" in err and "`X`" in err


def test_missing_spec_file(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "compile", "nope.sg")
    assert code == 2
    assert out == ""
    assert "nope.sg: error: spec file `nope.sg` does not exist" in err
    assert "minecraft/safeguard0" in err  # the hint lists the shipped specs


def test_spec_is_a_directory(capsys, tmp_path):
    code, _, err = run(capsys, "compile", str(tmp_path))
    assert code == 2
    assert "Traceback" not in err and "error" in err


def test_include_cycle(capsys, tmp_path):
    a = write(tmp_path, "a.sg", 'include "b.sg"\nprops: p "p"\nrule r: ltl G p\n')
    write(tmp_path, "b.sg", 'include "a.sg"\n')
    code, _, err = run(capsys, "compile", a)
    assert code == 2
    assert "include cycle: a.sg -> b.sg -> a.sg" in err
    assert "b.sg:1:9: error:" in err
    assert '    include "a.sg"' in err


def test_duplicate_rule_names(capsys, tmp_path):
    path = write(tmp_path, "dup.sg", LAVA_SPEC + "rule no_lava: ltl F wood\n")
    code, _, err = run(capsys, "compile", path)
    assert code == 2
    assert f"{path}:6:6: error: rule `no_lava` is defined twice" in err
    assert "^^^^^^^" in err
    assert "first defined at" in err


def test_non_deterministic_machine(capsys, tmp_path):
    path = write(tmp_path, "nd.sg", '''props:
    a "a"
    b "b"
rule m: machine {
    initial q0
    violation bad
    q0 -> q0 : a
    q0 -> bad : b
}
''')
    code, _, err = run(capsys, "compile", path)
    assert code == 2
    assert f"{path}:8:5: error:" in err
    assert "non-deterministic" in err
    assert "hint:" in err


def test_syntax_error_location(capsys, tmp_path):
    path = write(tmp_path, "syn.sg", LAVA_SPEC.replace("G !lava", "G (!lava"))
    code, _, err = run(capsys, "compile", path)
    assert code == 2
    assert err.startswith(f"{path}:")
    assert "unexpected" in err


# --------------------------------------------------------------------------------------------
# check


def test_check_ok(capsys, tmp_path):
    trace = write(tmp_path, "ok.jsonl", jsonl(["wood"], [], {"wood": True, "lava": False}))
    spec = write(tmp_path, "lava.sg", LAVA_SPEC)
    code, out, err = run(capsys, "check", spec, trace)
    assert code == 0, err
    assert "end of trace after 3 steps" in out
    assert "OK: no rule violated" in out


def test_check_violation_text(capsys, tmp_path):
    trace = write(tmp_path, "bad.jsonl", jsonl(["wood"], ["lava", "wood"], []))
    code, out, _ = run(capsys, "check", "--ltl", "G !lava & G(wood | !wood)", trace)
    assert code == 1
    rows = out.splitlines()
    assert rows[0].split() == ["step", "line", "state", "verdict", "violated", "rules", "labels"]
    assert rows[2].split()[:5] == ["1", "2", "1", "violated", "formula"]
    assert "VIOLATED at step 1 (line 2): rule formula" in out


def test_check_json_fields(capsys, tmp_path):
    trace = write(tmp_path, "t.jsonl", '["wood"]\n\n  \n{"creeper": true}\n[]\n')
    code, out, _ = run(capsys, "check", "minecraft/safeguard0", trace, "--format", "json")
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    steps, end = records[:-1], records[-1]
    assert [r["step"] for r in steps] == [0, 1, 2]
    assert [r["line"] for r in steps] == [1, 4, 5]  # blank lines are skipped
    assert steps[0] == {"event": "step", "step": 0, "line": 1, "labels": ["wood"], "state": 0,
                        "verdict": "presumably_satisfied", "accepting": True,
                        "violated_rules": []}
    assert steps[1]["labels"] == ["creeper"]
    assert steps[1]["verdict"] == "violated"
    assert steps[1]["violated_rules"] == ["safeguard0"]
    assert steps[2]["verdict"] == "violated" and steps[2]["violated_rules"] == []
    assert end["event"] == "end"
    assert end["steps"] == 3 and end["violated"] is True
    assert end["first_violation_step"] == 1
    assert end["violated_rules"] == ["safeguard0"]


def test_check_multi_rule_names_the_broken_rule(capsys, tmp_path):
    spec = write(tmp_path, "two.sg", LAVA_SPEC + "rule wood_once: never wood ; wood\n")
    trace = write(tmp_path, "t.jsonl", jsonl(["wood"], ["wood"]))
    code, out, _ = run(capsys, "check", spec, trace, "-f", "json")
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert records[1]["violated_rules"] == ["wood_once"]


def test_check_unmet_finite_obligation_is_a_violation(capsys, tmp_path):
    trace = write(tmp_path, "t.jsonl", jsonl([], []))
    code, out, _ = run(capsys, "check", "patterns/eventually_goal", trace)
    assert code == 1
    assert "unmet obligations of rule eventually_goal" in out
    code, out, _ = run(capsys, "check", "patterns/eventually_goal", trace, "-f", "json")
    end = json.loads(out.splitlines()[-1])
    assert end["violated"] is True and end["first_violation_step"] is None
    assert end["verdict"] == "presumably_violated"
    assert end["pending_rules"] == ["eventually_goal"]


def test_check_obligation_met(capsys, tmp_path):
    trace = write(tmp_path, "t.jsonl", jsonl([], ["goal"]))
    code, out, _ = run(capsys, "check", "patterns/eventually_goal", trace)
    assert code == 0
    assert "verdict satisfied" in out


def test_check_infinite_semantics_inconclusive_end_is_ok(capsys, tmp_path):
    trace = write(tmp_path, "t.jsonl", jsonl([], []))
    code, out, _ = run(capsys, "check", "--ltl", "F goal", "--semantics", "infinite", trace)
    assert code == 0
    assert "inconclusive" in out


def test_check_empty_trace(capsys, tmp_path):
    trace = write(tmp_path, "t.jsonl", "\n")
    code, out, _ = run(capsys, "check", "--ltl", "G !lava", trace)
    assert code == 0
    assert "after 0 steps" in out
    code, out, _ = run(capsys, "check", "--ltl", "F goal", trace)
    assert code == 1


def test_check_unsatisfiable_spec(capsys, tmp_path):
    trace = write(tmp_path, "t.jsonl", jsonl(["a"]))
    code, out, _ = run(capsys, "check", "--ltl", "a & !a", trace, "-f", "json")
    assert code == 1
    first = json.loads(out.splitlines()[0])
    assert first["verdict"] == "violated" and first["violated_rules"] == ["formula"]


def test_check_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('[]\n{"lava": true}\n'))
    code, out, _ = run(capsys, "check", "--ltl", "G !lava", "-", "--format", "json")
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert records[1]["violated_rules"] == ["formula"]
    assert records[-1]["event"] == "end"


def test_check_stdin_error_names_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('[]\n["lvaa"]\n'))
    code, _, err = run(capsys, "check", "--ltl", "G !lava", "-")
    assert code == 2
    assert err.startswith("<stdin>:2:2: error: unknown proposition `lvaa`")


BAD_LINES = [
    # line, message part, column, caret width, hint part
    ('["wood", 3]', "must be a string, not the number 3", 10, 1, "JSON list"),
    ('["wod"]', "unknown proposition `wod`", 2, 5, "did you mean `wood`"),
    ('{"wood": 1}', "must be true or false, not the number 1", 10, 1, "true or false"),
    ('{"wood": "true"}', "must be true or false", 10, 6, "true or false"),
    ('{"lavaa": false}', "unknown proposition `lavaa`", 2, 7, "did you mean `lava`"),
    ('"wood"', "must be a JSON list or object, not the string", 1, 6, '["wood"]'),
    ("null", "must be a JSON list or object, not null", 1, 4, "JSON list"),
    ("[wood]", "invalid JSON", 2, 1, "JSON list"),
    ('["wood",]', "invalid JSON", 9, 1, "JSON list"),
    ('{"wood": true, "wood": false}', "given twice", 16, 6, "first given at column 2"),
    ("  [1.5]", "not the number 1.5", 4, 3, "JSON list"),
]


@pytest.mark.parametrize("line, message, column, width, hint", BAD_LINES,
                         ids=[b[0] for b in BAD_LINES])
def test_check_bad_trace_lines(capsys, tmp_path, line, message, column, width, hint):
    spec = write(tmp_path, "lava.sg", LAVA_SPEC)
    trace = write(tmp_path, "trace.jsonl", f'["wood"]\n\n{line}\n[]\n')
    code, _, err = run(capsys, "check", spec, trace)
    assert code == 2
    lines = err.splitlines()
    assert lines[0].startswith(f"{trace}:3:{column}: error: ")
    assert message in lines[0]
    assert lines[1] == "    " + line
    assert lines[2] == "    " + " " * (column - 1) + "^" * width
    assert hint in err
    assert "Traceback" not in err


def test_check_missing_trace_file(capsys, tmp_path):
    missing = str(tmp_path / "none.jsonl")
    code, _, err = run(capsys, "check", "--ltl", "G a", missing)
    assert code == 2
    assert f"{missing}: error: trace file" in err and "does not exist" in err


def test_check_trace_not_utf8(capsys, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'["a"]\n["\xff"]\n')
    code, _, err = run(capsys, "check", "--ltl", "G a", str(path))
    assert code == 2
    assert "UTF-8" in err


def test_check_spec_error_exits_2(capsys, tmp_path):
    trace = write(tmp_path, "t.jsonl", "[]\n")
    code, _, err = run(capsys, "check", "--ltl", "G (", trace)
    assert code == 2
    assert err.startswith("--ltl:1:")


def test_keyboard_interrupt_exits_130(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_compile", interrupted)
    code, _, err = run(capsys, "compile", "--ltl", "G a")
    assert code == 130
    assert "interrupted" in err


def test_os_error_exits_2(capsys, monkeypatch):
    def broken(args):
        raise PermissionError(13, "Permission denied", "secret.sg")

    monkeypatch.setattr(cli, "_cmd_compile", broken)
    code, _, err = run(capsys, "compile", "--ltl", "G a")
    assert code == 2
    assert err.strip() == "secret.sg: error: Permission denied"


def test_internal_error_is_exit_70_with_traceback(monkeypatch, capsys):
    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_cmd_compile", bug)
    assert main(["compile", "--ltl", "G a"]) == cli.EXIT_INTERNAL == 70
    err = capsys.readouterr().err
    assert err.startswith("safeguards: internal error")
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err


def test_non_located_errors_say_error(monkeypatch, capsys):
    from safeguards.errors import BackendUnavailable

    def unavailable(args):
        raise BackendUnavailable("the spot backend needs pip install 'safeguards[spot]'")

    monkeypatch.setattr(cli, "_cmd_compile", unavailable)
    assert main(["compile", "--ltl", "G a"]) == 2
    assert capsys.readouterr().err.startswith("safeguards: error: the spot backend needs")


def test_check_accepts_an_option_between_spec_and_trace(capsys, tmp_path):
    trace = write(tmp_path, "t.jsonl", jsonl(["wood"], []))
    code, out, _ = run(capsys, "check", "minecraft/safeguard0", "--format", "json", trace)
    assert code == 0 and out.count("\n") == 3  # two steps and the summary
    code, _, err = run(capsys, "check", "minecraft/safeguard0", trace, "extra")
    assert code == 2 and "unrecognized arguments: extra" in err


def test_output_to_dev_null_keeps_the_device(capsys):
    import stat

    assert run(capsys, "compile", "minecraft/safeguard0", "-o", "/dev/null")[0] == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# --------------------------------------------------------------------------------------------
# the entry point


def test_python_dash_m_version():
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-m", "safeguards", "--version"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "safeguards 0.1.0"


@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_compile_picture(capsys, tmp_path, fmt, magic):
    import shutil

    target = tmp_path / f"monitor.{fmt}"
    code, out, err = run(capsys, "compile", "--ltl", "G(a -> X b)", "-f", fmt, "-o", str(target))
    assert out == ""
    if shutil.which("dot") is None:  # Graphviz missing: a clean error, no traceback
        assert code == 2 and "Traceback" not in err and not target.exists()
        return
    assert code == 0, err
    assert magic in target.read_bytes()[:1000]
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
