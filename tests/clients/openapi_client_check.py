#!/usr/bin/env python3
"""Generates a Python client from the proxy's `/openapi.json` with
`openapi-python-client`, and uses it against the running proxy.

Checks:
- the generator accepts the document (exit status 0);
- every action of `GET /actions` has a generated endpoint module (a module
  whose request is `POST /actions/{key}`); the missing ones are printed;
- two actions called through the generated package (`list-products`,
  `get-product`) answer 200 with the sandbox's values.

Expects `ds24-proxy serve --sandbox` at --proxy and `openapi-python-client`
on PATH (or next to this Python). Ends with `N passed, N failed`; the exit
status is 1 on any failure.

Usage: openapi_client_check.py --proxy http://127.0.0.1:PORT --workdir DIR
"""

import argparse
import importlib
import inspect
import json
import os
import pathlib
import pkgutil
import re
import shutil
import subprocess
import sys
import typing
import urllib.request

TIMEOUT_SECS = 30
GENERATOR_TIMEOUT_SECS = 240


def get_json(url):
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECS) as resp:
        return json.loads(resp.read())


def generator_command():
    # The one installed with this Python (the venv's), else PATH's.
    here = pathlib.Path(sys.executable).parent / "openapi-python-client"
    if here.exists():
        return [str(here)]
    found = shutil.which("openapi-python-client")
    if not found:
        raise SystemExit("openapi-python-client is not installed (pip install -r tests/clients/requirements.txt)")
    return [found]


class Run:
    def __init__(self, proxy, workdir):
        self.proxy = proxy.rstrip("/")
        self.workdir = pathlib.Path(workdir)
        self.passed = 0
        self.failed = 0
        self.package = None
        self.endpoints = {}  # (method, url) -> module
        self.skipped = {}  # url -> the generator's reason for not generating it

    def check(self, name, fn):
        try:
            note = fn()
        except Exception as e:
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}"[:4000])
            return False
        self.passed += 1
        print(f"PASS {name}" + (f" ({note})" if note else ""))
        return True

    # -- steps ----------------------------------------------------------------

    def generate(self):
        spec = get_json(self.proxy + "/openapi.json")
        self.workdir.mkdir(parents=True, exist_ok=True)
        spec_path = self.workdir / "openapi.json"
        spec_path.write_text(json.dumps(spec, indent=1))
        out = self.workdir / "generated"
        if out.exists():
            shutil.rmtree(out)
        env = dict(os.environ)
        # The generator's post hooks run `ruff` from PATH: the venv's.
        env["PATH"] = str(pathlib.Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        cmd = generator_command() + [
            "generate", "--path", str(spec_path), "--output-path", str(out),
            "--meta", "none", "--overwrite",
        ]
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=GENERATOR_TIMEOUT_SECS,
        )
        output = (proc.stdout + proc.stderr).strip()
        (self.workdir / "generator.log").write_text(output + "\n")
        warnings = [l for l in output.splitlines() if "warning" in l.lower() or "unable" in l.lower()]
        # "WARNING parsing POST /actions/x within tag. Endpoint will not be
        # generated." followed by the reason on the next non-empty line.
        for m in re.finditer(
            r"WARNING parsing (\w+) (\S+) within \S+\. Endpoint will not be generated\.\s*\n\s*(.+)",
            output,
        ):
            self.skipped[(m.group(1).lower(), m.group(2))] = m.group(3).strip()
        if proc.returncode != 0:
            raise AssertionError(
                f"openapi-python-client exited {proc.returncode}:\n" + "\n".join(output.splitlines()[-40:])
            )
        if not (out / "__init__.py").exists():
            raise AssertionError(f"no package generated in {out}:\n{output[-2000:]}")
        # With --meta none the output folder is the package itself.
        sys.path.insert(0, str(out.parent))
        self.package = importlib.import_module(out.name)
        self.index_endpoints()
        note = f"{len(self.endpoints)} endpoint modules"
        if warnings:
            note += f", {len(warnings)} generator warning lines (see {self.workdir / 'generator.log'})"
        return note

    def index_endpoints(self):
        """(method, url) of every generated endpoint module, read from its
        `_get_kwargs` (operation ids and tags may change; the route may not)."""
        api = importlib.import_module(self.package.__name__ + ".api")
        for info in pkgutil.walk_packages(api.__path__, api.__name__ + "."):
            if info.ispkg:
                continue
            module = importlib.import_module(info.name)
            kwargs = getattr(module, "_get_kwargs", None)
            if kwargs is None:
                continue
            source = inspect.getsource(kwargs)
            method = re.search(r'"method":\s*"(\w+)"', source)
            url = re.search(r'"url":\s*f?"([^"]+)"', source)
            if method and url:
                self.endpoints[(method.group(1).lower(), url.group(1))] = module

    def every_action_generated(self):
        actions = get_json(self.proxy + "/actions")["actions"]
        assert len(actions) == 123, f"GET /actions lists {len(actions)} actions, expected 123"
        missing = [a for a in actions if ("post", f"/actions/{a['key']}") not in self.endpoints]
        if missing:
            lines = []
            for a in missing:
                why = self.skipped.get(("post", f"/actions/{a['key']}"), "no generator message")
                lines.append(f"  {a['key']} ({a['function']}): {why}")
            raise AssertionError(
                f"{len(missing)} of {len(actions)} actions have no generated POST endpoint:\n"
                + "\n".join(lines)
            )
        return f"{len(actions)} of {len(actions)}"

    def call_action(self, key, body):
        module = self.endpoints.get(("post", f"/actions/{key}"))
        assert module is not None, f"no generated module for POST /actions/{key}"
        client_mod = importlib.import_module(self.package.__name__ + ".client")
        client = client_mod.Client(base_url=self.proxy, timeout=_httpx_timeout(), raise_on_unexpected_status=False)
        hints = typing.get_type_hints(module.sync_detailed)
        kwargs = {"client": client}
        if "body" in hints:
            kwargs["body"] = build_body(hints["body"], body)
        response = module.sync_detailed(**kwargs)
        content = json.loads(response.content) if response.content else None
        assert int(response.status_code) == 200, (int(response.status_code), content)
        parsed = response.parsed
        assert parsed is not None, f"the generated client parsed nothing from {content}"
        return parsed, content

    def list_products(self):
        parsed, content = self.call_action("list-products", {})
        meta = _to_dict(getattr(parsed, "meta", None))
        assert meta.get("action") == "list-products", meta
        data = _to_dict(getattr(parsed, "data", None))
        products = data.get("products") or content["data"]["products"]
        ids = sorted(str(p["id"]) for p in products)
        assert ids == ["10001", "10002", "10003", "10004", "10005"], ids
        return "5 products"

    def get_product(self):
        parsed, content = self.call_action("get-product", {"product_id": "10002"})
        data = _to_dict(getattr(parsed, "data", None)) or content["data"]
        product = data["product"]
        assert product["name"] == "Async Rust Video Course", product
        assert product["currency"] == "USD", product
        return "10002 Async Rust Video Course"


def _httpx_timeout():
    import httpx
    return httpx.Timeout(TIMEOUT_SECS)


def _to_dict(value):
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return {}


def build_body(hint, body):
    """An instance of the generated body model (or the plain dict when the
    generator typed the body as a dict)."""
    candidates = typing.get_args(hint) or (hint,)
    for cls in candidates:
        if hasattr(cls, "from_dict"):
            return cls.from_dict(body)
    for cls in candidates:
        origin = typing.get_origin(cls) or cls
        if origin is dict:
            return body
    raise AssertionError(f"cannot build a request body of type {hint}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--workdir", required=True, help="where the spec and the generated package go")
    args = parser.parse_args()

    run = Run(args.proxy, args.workdir)
    print(f"openapi-python-client on {run.proxy}/openapi.json (output in {run.workdir})")
    if run.check("generate_client", run.generate):
        run.check("every_action_generated", run.every_action_generated)
        run.check("call_list_products", run.list_products)
        run.check("call_get_product", run.get_product)
    else:
        # Nothing to import: the dependent checks fail too, named.
        for name in ("every_action_generated", "call_list_products", "call_get_product"):
            run.failed += 1
            print(f"FAIL {name}: not run, the client was not generated")
    print(f"{run.passed} passed, {run.failed} failed")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
