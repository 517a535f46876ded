"""``flts stack up|status|down|env``: the local infrastructure, without Docker."""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import fields
from pathlib import Path

from flts.infra.stack import LocalStack, StackPorts, default_data_dir


def _stack(args: argparse.Namespace) -> LocalStack:
    defaults = StackPorts()
    ports = StackPorts(
        **{
            f.name: getattr(args, f"{f.name}_port", None) or getattr(defaults, f.name)
            for f in fields(StackPorts)
        }
    )
    return LocalStack(args.data_dir, ports)


def _up(args: argparse.Namespace) -> int:
    stack = _stack(args)
    endpoints = stack.up()
    print(f"FLTS stack is up (data in {stack.data_dir})")
    for name, value in endpoints.public().items():
        print(f"  {name:16} {value}")
    print(f"  {'credentials':16} {stack.data_dir / 'credentials.json'} (or: flts stack env)")
    return 0


def _status(args: argparse.Namespace) -> int:
    stack = _stack(args)
    components = stack.status()
    healthy = all(c["healthy"] for c in components.values())
    if args.json:
        urls = {"kafka_bootstrap": "kafka", "s3_endpoint": "seaweedfs"}
        urls |= {"mlflow_uri": "mlflow", "gateway_url": "gateway"}
        report = {k: components[c]["endpoint"] for k, c in urls.items()}
        report |= {"healthy": healthy, "components": components}
        report["unhealthy"] = [n for n, c in components.items() if not c["healthy"]]
        report["data_dir"] = str(stack.data_dir)
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for name, comp in components.items():
            state = "healthy" if comp["healthy"] else ("running" if comp["alive"] else "down")
            print(f"{name:10} {state:8} {comp['endpoint']:28} pid={comp['pid']}")
        sick = [name for name, comp in components.items() if not comp["healthy"]]
        if sick:
            print(f"unhealthy: {', '.join(sick)} (`flts stack up` restarts only those)")
    return 0 if healthy else 1


def _down(args: argparse.Namespace) -> int:
    stack = _stack(args)
    from flts.infra.procs import stop_remembered

    # Services a `flts run --keep-running` left up go first: they use the stack.
    for name in stop_remembered(stack.data_dir):
        print(f"stopped service {name}")
    stack.down()
    print(f"FLTS stack in {stack.data_dir} is down")
    return 0


def _env(args: argparse.Namespace) -> int:
    for name, value in _stack(args).endpoints().service_env().items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    actions = {
        "up": (_up, "start SeaweedFS, tansu, MLflow and the gateway; print the endpoints"),
        "status": (_status, "report each component's endpoint and health"),
        "down": (_down, "stop everything the stack started"),
        "env": (_env, "print `export VAR=...` lines (credentials included) for a shell"),
    }
    for name, (func, help_text) in actions.items():
        sp = sub.add_parser(name, help=help_text)
        sp.add_argument(
            "--data-dir", type=Path, default=default_data_dir(), help="stack state and data"
        )
        for f in fields(StackPorts):
            flag = "--" + f.name.replace("_", "-") + "-port"
            sp.add_argument(flag, dest=f"{f.name}_port", type=int, help=f"default {f.default}")
        if name == "status":
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.set_defaults(func=func)
