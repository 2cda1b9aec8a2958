"""The `virtkit` command line: parsing, error messages and exit statuses."""

import argparse
import socket
import subprocess
import sys

import pytest

from virtkit import __version__, cli

# addi a0, zero, 1 and ebreak, as the RISC-V unprivileged spec encodes them.
TINY_PROGRAM = "addi a0, zero, 1\nebreak\n"
TINY_PROGRAM_WORDS = (0x00100513, 0x00100073)


def run_cli(capsys, *argv):
    """Run the command line in-process; return (status, stdout, stderr)."""
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_version_command_prints_the_package_version(capsys):
    assert run_cli(capsys, "version") == (0, f"virtkit {__version__}\n", "")


def test_version_option_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"virtkit {__version__}\n"


def test_python_dash_m_virtkit_runs_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "virtkit", "version"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, f"virtkit {__version__}\n")


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([])
    assert stop.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["asm", "prog.s", "--frobnicate"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, value",
    [
        ("0x80000000", 0x8000_0000),
        ("0X8000_0000", 0x8000_0000),
        ("2147483648", 0x8000_0000),
        ("0", 0),
        ("0xffffffff", 0xFFFF_FFFF),
    ],
)
def test_parse_address_accepts_hex_and_decimal(text, value):
    assert cli.parse_address(text) == value


@pytest.mark.parametrize(
    "text, message",
    [
        ("0xZZ", "invalid address '0xZZ'"),
        ("0x", "invalid address '0x'"),
        ("", "invalid address ''"),
        ("eighty", "invalid address 'eighty'"),
        ("-4", "outside the 32-bit address space"),
        ("0x100000000", "outside the 32-bit address space"),
    ],
)
def test_parse_address_rejects_bad_addresses(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        cli.parse_address(text)


@pytest.mark.parametrize("command", ["asm", "disasm"])
def test_bad_base_names_the_option_and_the_value(capsys, command):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "prog", "--base", "0xZZ"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --base: invalid address '0xZZ'" in err
    assert "hex (0x80000000) or decimal" in err


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_bad_port_is_a_usage_error(capsys, port):
    with pytest.raises(SystemExit) as stop:
        cli.main(["lab", "--port", port])
    assert stop.value.code == 2
    assert "argument --port" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["asm", "disasm"])
def test_missing_input_file_is_one_clear_line(capsys, tmp_path, command):
    missing = tmp_path / "nope.s"
    status, out, err = run_cli(capsys, command, str(missing))
    assert (status, out) == (2, "")
    assert err == f"virtkit: error: {missing}: no such file\n"


def test_folder_as_input_is_rejected(capsys, tmp_path):
    status, _, err = run_cli(capsys, "disasm", str(tmp_path))
    assert status == 2
    assert err == f"virtkit: error: {tmp_path}: is a folder, expected a file\n"


def test_asm_refuses_to_overwrite_its_source(capsys, tmp_path):
    source = tmp_path / "prog.s"
    source.write_text(TINY_PROGRAM)
    status, _, err = run_cli(capsys, "asm", str(source), "-o", str(source))
    assert status == 2
    assert "would overwrite the source" in err
    assert source.read_text() == TINY_PROGRAM


def test_missing_file_from_a_subprocess_has_no_traceback(tmp_path):
    missing = tmp_path / "nope.elf"
    result = subprocess.run(
        [sys.executable, "-m", "virtkit", "disasm", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"virtkit: error: {missing}: no such file\n"


def test_os_error_is_reported_with_its_file(capsys, monkeypatch):
    def denied(args):
        raise PermissionError(13, "Permission denied", "out.elf")

    monkeypatch.setattr(cli, "_cmd_version", denied)
    assert run_cli(capsys, "version") == (2, "", "virtkit: error: out.elf: permission denied\n")


def test_unexpected_exception_is_one_line_with_status_1(capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_cmd_version", broken)
    monkeypatch.delenv("VIRTKIT_DEBUG", raising=False)
    status, _, err = run_cli(capsys, "version")
    assert status == 1
    assert err.startswith("virtkit: error: RuntimeError: boom (")
    assert "VIRTKIT_DEBUG=1" in err
    assert err.count("\n") == 1


def test_virtkit_debug_lets_the_traceback_through(monkeypatch):
    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_cmd_version", broken)
    monkeypatch.setenv("VIRTKIT_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["version"])


def test_lab_on_a_taken_port_names_the_port(capsys):
    pytest.importorskip("jupyterlab", reason="virtkit lab needs JupyterLab")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        status, _, err = run_cli(capsys, "lab", "--no-browser", "--port", str(port))
    assert status == 2
    assert err.startswith(f"virtkit: error: port {port} on 127.0.0.1 is already in use")
    assert "--port" in err


def _assembler():
    return pytest.importorskip("virtkit.isa.asm", reason="the assembler is not written yet")


def test_asm_writes_an_elf_file_next_to_the_source(capsys, tmp_path):
    _assembler()
    source = tmp_path / "prog.s"
    source.write_text(TINY_PROGRAM)
    assert run_cli(capsys, "asm", str(source)) == (0, "", "")
    assert (tmp_path / "prog.elf").read_bytes()[:4] == b"\x7fELF"


def test_asm_binary_writes_the_raw_instruction_words(capsys, tmp_path):
    _assembler()
    source = tmp_path / "prog.s"
    source.write_text(TINY_PROGRAM)
    output = tmp_path / "out.bin"
    status, _, _ = run_cli(
        capsys, "asm", str(source), "--binary", "--base", "0x8000_0000", "-o", str(output)
    )
    assert status == 0
    expected = b"".join(word.to_bytes(4, "little") for word in TINY_PROGRAM_WORDS)
    assert output.read_bytes() == expected


def test_assembler_error_is_reported_without_traceback(capsys, tmp_path):
    _assembler()
    source = tmp_path / "bad.s"
    source.write_text("addi a0, zero, 1\nfrobnicate a0\n")
    status, out, err = run_cli(capsys, "asm", str(source))
    assert (status, out) == (2, "")
    assert err.startswith("virtkit: error: ")
    assert "bad.s" in err
    assert "Traceback" not in err
    assert not (tmp_path / "bad.elf").exists()


def test_disasm_prints_what_asm_assembled(capsys, tmp_path):
    _assembler()
    pytest.importorskip("virtkit.isa.disasm", reason="the disassembler is not written yet")
    source = tmp_path / "prog.s"
    source.write_text(TINY_PROGRAM)
    assert run_cli(capsys, "asm", str(source))[0] == 0
    status, out, err = run_cli(capsys, "disasm", str(tmp_path / "prog.elf"), "--no-aliases")
    assert (status, err) == (0, "")
    assert "addi" in out
    assert "ebreak" in out


def test_run_refuses_a_command_line_for_a_bare_metal_program(capsys, tmp_path):
    _assembler()
    source = tmp_path / "prog.s"
    source.write_text(TINY_PROGRAM)
    assert run_cli(capsys, "asm", str(source))[0] == 0
    status, _, err = run_cli(capsys, "run", str(tmp_path / "prog.elf"), "--cmdline", "init=sh")
    assert status == 2
    assert "--cmdline is for kernels booted through SBI firmware" in err


def test_run_names_a_missing_file_that_is_no_guest_either(capsys, tmp_path):
    status, _, err = run_cli(capsys, "run", "tinyoss")
    assert status == 2
    assert err.startswith("virtkit: error: tinyoss: no such file, nor a guest virtkit ships")
    assert "hello, compute" in err
