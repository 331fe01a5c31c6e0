#!/usr/bin/env python3
"""Helm without the helm binary: lint, template, install and uninstall a chart through
helm-sdkpy, the PyPI wheel that ships the real Helm (v4) Go library with Python bindings.

    e2e/cluster/helm.py lint CHART [--strict] [--set K=V ...] [-f VALUES ...]
    e2e/cluster/helm.py template NAME CHART [--namespace NS] [--set K=V ...] [-f VALUES ...]
                        [--include-crds] [--kube-version V] [--api-versions G/V[/Kind] ...]
    e2e/cluster/helm.py notes NAME CHART [the options of template]
    e2e/cluster/helm.py install NAME CHART --namespace NS [--create-namespace] [--wait]
                        [--timeout S] [--set K=V ...] [-f VALUES ...]
    e2e/cluster/helm.py uninstall NAME --namespace NS [--wait] [--timeout S]

Run it with any python3: it re-executes itself in the venv that e2e/cluster/helm-venv.sh makes
(once, under ${RAFTNET_CACHE:-/var/cache/raftnet}/helm-venv), or run it as
`$(e2e/cluster/helm-venv.sh) e2e/cluster/helm.py ...`. install and uninstall use the cluster of
KUBECONFIG (or ~/.kube/config); lint, template and notes touch no cluster.

helm-sdkpy has no `template` and no dry run: its Install always talks to an API server. So
template (and notes, and the rendering half of lint) runs a real Helm install against a stub API
server inside this process, on 127.0.0.1: it answers discovery (Kubernetes --kube-version,
default 1.20.2, the built-in groups of that version and the --api-versions given, like
`helm template --api-versions`), accepts every create, and keeps nothing. Then it prints the
release's manifest, as `helm template` does. Helm's own lint result comes through helm-sdkpy
without its messages' text (Go errors serialize as {}): lint prints each finding's severity and
file, then renders the chart to show the text of any template error.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# --- Running inside the venv ---------------------------------------------------------------


def enter_venv() -> None:
    """Re-executes this script as the venv's `bin/helm` (a link to its python: Helm names the
    field manager of what it creates after the program), making the venv first if needed."""
    if Path(sys.executable).name == "helm":
        return
    venv = Path(sys.prefix)
    if sys.prefix != sys.base_prefix and (venv / "bin" / "helm").exists():
        helm = venv / "bin" / "helm"
    else:
        script = HERE / "helm-venv.sh"
        try:
            made = subprocess.run([str(script)], check=True, stdout=subprocess.PIPE, text=True)
        except (OSError, subprocess.CalledProcessError) as err:
            sys.exit(f"helm.py: cannot make the helm-sdkpy venv ({err}); run {script} to see why")
        helm = Path(made.stdout.strip()).with_name("helm")
    os.execv(helm, [str(helm), __file__, *sys.argv[1:]])


# --- Values: -f files and --set, as helm merges them ---------------------------------------


def merge(base: dict, override: dict) -> dict:
    """Deep-merges `override` into `base` (maps merge, everything else is replaced)."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def split_unescaped(text: str, sep: str) -> list[str]:
    """Splits at `sep` outside braces and not after a backslash; `\\SEP` becomes SEP, other
    escapes stay for the next split (`a\\.b=1,c=2`: at commas, then at dots)."""
    parts, current, depth, i = [], "", 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current += text[i + 1] if text[i + 1] == sep else text[i : i + 2]
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        if c == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += c
        i += 1
    parts.append(current)
    return parts


def typed(text: str, as_string: bool) -> Any:
    """A --set value as Helm types it: true/false, null, integers, {a,b} lists, else a string."""
    if as_string:
        return text
    if text.startswith("{") and text.endswith("}"):
        inner = text[1:-1]
        return [typed(item, False) for item in split_unescaped(inner, ",")] if inner else []
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        return text


def set_path(values: dict, key: str, value: Any) -> None:
    """Sets `a.b[0].c` in `values`, making maps and lists on the way."""
    parts: list[str | int] = []
    for part in split_unescaped(key, "."):
        name, _, rest = part.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.removeprefix("[")
    node: Any = values
    for here, after in zip(parts, parts[1:] + [None], strict=True):
        if after is None:
            if isinstance(here, int):
                node.extend([None] * (here + 1 - len(node)))
            node[here] = value
            return
        fresh: Any = [] if isinstance(after, int) else {}
        if isinstance(here, int):
            node.extend([None] * (here + 1 - len(node)))
            if not isinstance(node[here], type(fresh)):
                node[here] = fresh
        elif not isinstance(node.get(here), type(fresh)):
            node[here] = fresh
        node = node[here]


def load_values_file(path: str) -> dict:
    text = Path(path).read_text()
    try:
        import yaml
    except ImportError:
        loaded = json.loads(text)
    else:
        loaded = yaml.safe_load(text)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        sys.exit(f"helm.py: {path}: values must be a map")
    return loaded


def user_values(args: argparse.Namespace) -> dict:
    values: dict = {}
    for path in args.values or []:
        merge(values, load_values_file(path))
    for option, as_string in ((args.set or [], False), (args.set_string or [], True)):
        for assignment in option:
            for item in split_unescaped(assignment, ","):
                key, eq, value = item.partition("=")
                if not eq or not key:
                    sys.exit(f"helm.py: --set {assignment!r}: expected KEY=VALUE[,KEY=VALUE]")
                set_path(values, key, typed(value, as_string))
    return values


# --- A stub API server for rendering -------------------------------------------------------

# (resource, kind, namespaced) of the built-in groups the stub serves, by group version.
BUILT_IN: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("serviceaccounts", "ServiceAccount", True),
        ("services", "Service", True),
        ("secrets", "Secret", True),
        ("configmaps", "ConfigMap", True),
        ("pods", "Pod", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
    ],
    "apps/v1": [
        ("deployments", "Deployment", True),
        ("statefulsets", "StatefulSet", True),
        ("daemonsets", "DaemonSet", True),
    ],
    "batch/v1": [("jobs", "Job", True)],
    "rbac.authorization.k8s.io/v1": [
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ],
    "apiextensions.k8s.io/v1": [
        ("customresourcedefinitions", "CustomResourceDefinition", False),
    ],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy", True)],
    "events.k8s.io/v1": [("events", "Event", True)],
    "coordination.k8s.io/v1": [("leases", "Lease", True)],
}
# The kinds of API groups named by --api-versions without a kind.
KNOWN_GROUPS: dict[str, list[tuple[str, str, bool]]] = {
    "monitoring.coreos.com/v1": [
        ("servicemonitors", "ServiceMonitor", True),
        ("podmonitors", "PodMonitor", True),
        ("prometheusrules", "PrometheusRule", True),
    ],
}


def served_groups(minor: int, api_versions: list[str]) -> dict[str, list[tuple[str, str, bool]]]:
    groups = {gv: list(resources) for gv, resources in BUILT_IN.items()}
    # PodDisruptionBudget: policy/v1 since 1.21, policy/v1beta1 until 1.25.
    if minor >= 21:
        groups["policy/v1"] = [("poddisruptionbudgets", "PodDisruptionBudget", True)]
    if minor < 25:
        groups["policy/v1beta1"] = [("poddisruptionbudgets", "PodDisruptionBudget", True)]
    for name in api_versions:
        parts = name.split("/")
        if len(parts) == 3:
            gv, kind = "/".join(parts[:2]), parts[2]
            groups.setdefault(gv, []).append((kind.lower() + "s", kind, True))
        elif len(parts) == 2:
            groups.setdefault(name, []).extend(KNOWN_GROUPS.get(name, []))
        else:
            sys.exit(f"helm.py: --api-versions {name!r}: expected GROUP/VERSION[/Kind]")
    return groups


class StubApiServer:
    """Answers what Helm's install asks of a cluster, on 127.0.0.1, and keeps nothing."""

    def __init__(self, kube_version: str, api_versions: list[str]):
        numbers = kube_version.removeprefix("v").split(".")
        if len(numbers) < 2 or not all(n.isdigit() for n in numbers[:2]):
            sys.exit(f"helm.py: --kube-version {kube_version!r}: expected 1.MINOR[.PATCH]")
        major, minor = numbers[0], int(numbers[1])
        self.version = {
            "major": major,
            "minor": str(minor),
            "gitVersion": "v" + ".".join(numbers + ["0"] * (3 - len(numbers))),
            "platform": "linux/amd64",
        }
        self.groups = served_groups(minor, api_versions)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler(), bind_and_activate=False)
        # client-go asks for every group's discovery at once: more than the default backlog
        # of 5 would make it wait a second for a retried connection.
        self.server.request_queue_size = 128
        self.server.server_bind()
        self.server.server_activate()
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def kubeconfig(self, namespace: str) -> str:
        """A kubeconfig that points at the stub, as YAML text (helm-sdkpy tells a kubeconfig's
        text from a file's path by its YAML keys)."""
        return (
            "apiVersion: v1\n"
            "kind: Config\n"
            "clusters:\n"
            f"- name: stub\n  cluster:\n    server: http://127.0.0.1:{self.server.server_port}\n"
            "users:\n"
            "- name: stub\n  user:\n    token: stub\n"
            "contexts:\n"
            f"- name: stub\n  context:\n    cluster: stub\n    user: stub\n"
            f"    namespace: {json.dumps(namespace)}\n"
            "current-context: stub\n"
        )

    def close(self) -> None:
        self.server.shutdown()

    def discovery(self, path: str) -> dict | None:
        if path == "/version":
            return self.version
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for gv in self.groups:
                if "/" in gv:
                    group, version = gv.split("/")
                    groups.setdefault(group, []).append(version)
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": group,
                        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in vs],
                        "preferredVersion": {"groupVersion": f"{group}/{vs[0]}", "version": vs[0]},
                    }
                    for group, vs in groups.items()
                ],
            }
        gv = path.removeprefix("/api/").removeprefix("/apis/")
        if gv in self.groups and path in (f"/api/{gv}", f"/apis/{gv}"):
            verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": gv,
                "resources": [
                    {
                        "name": name,
                        "singularName": kind.lower(),
                        "namespaced": namespaced,
                        "kind": kind,
                        "verbs": verbs,
                    }
                    for name, kind, namespaced in self.groups[gv]
                ],
            }
        return None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self) -> dict:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    return json.loads(data)
                except ValueError:
                    # Helm's release Secret comes as protobuf; an object without fields will do.
                    return {"kind": "Secret", "apiVersion": "v1", "metadata": {}}

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                found = stub.discovery(path)
                if found is not None:
                    self.reply(200, found)
                elif "labelSelector=" in query:
                    # Helm's release history: none.
                    self.reply(200, {"kind": "List", "apiVersion": "v1", "items": []})
                else:
                    self.reply(
                        404,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Failure",
                            "reason": "NotFound",
                            "code": 404,
                            "message": f"{path} not found",
                        },
                    )

            def do_POST(self) -> None:
                self.reply(201, self.body())

            def do_PUT(self) -> None:
                self.reply(200, self.body())

        return Handler


# --- Commands ------------------------------------------------------------------------------


def isolate_helm_home() -> None:
    """Keeps Helm's cache and config (and client-go's discovery cache) of a render out of the
    user's home. Before the library loads: Go reads the environment once."""
    home = Path(tempfile.mkdtemp(prefix="helm-py-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        os.environ[name] = str(home / name.lower())
    os.environ["KUBECACHEDIR"] = str(home / "kube-cache")


def render(args: argparse.Namespace, name: str, values: dict) -> dict:
    """Installs the chart into the stub API server and returns Helm's release (a dict)."""
    import helm_sdkpy

    stub = StubApiServer(args.kube_version, args.api_versions or [])
    try:
        config = helm_sdkpy.Configuration(
            namespace=args.namespace, kubeconfig=stub.kubeconfig(args.namespace)
        )
        install = helm_sdkpy.Install(config)
        return asyncio.run(install.run(name, args.chart, values=values or None, wait=False))
    finally:
        stub.close()


def chart_crds(release: dict) -> list[tuple[str, str]]:
    """The chart's crds/ files as (name, text), as Helm loaded them."""
    chart = release.get("chart", {})
    prefix = chart.get("metadata", {}).get("name", "")
    return [
        (f"{prefix}/{f['name']}", base64.b64decode(f["data"]).decode())
        for f in chart.get("files") or []
        if f["name"].startswith("crds/") and f["name"].endswith((".yaml", ".yml", ".json"))
    ]


def render_or_report(args: argparse.Namespace):
    """The rendered release, or None after printing Helm's error (as the helm CLI does)."""
    import helm_sdkpy

    try:
        return render(args, args.name, user_values(args))
    except helm_sdkpy.HelmError as err:
        print(f"Error: {err}", file=sys.stderr)
        return None


def cmd_template(args: argparse.Namespace) -> int:
    release = render_or_report(args)
    if release is None:
        return 1
    out = []
    if args.include_crds:
        out += [f"---\n# Source: {name}\n{text}" for name, text in chart_crds(release)]
    out.append(release.get("manifest", ""))
    for hook in release.get("hooks") or []:
        out.append(f"---\n# Source: {hook.get('path')}\n{hook.get('manifest', '')}\n")
    sys.stdout.write("".join(out))
    return 0


def cmd_notes(args: argparse.Namespace) -> int:
    release = render_or_report(args)
    if release is None:
        return 1
    sys.stdout.write(release.get("info", {}).get("notes", ""))
    return 0


SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def cmd_lint(args: argparse.Namespace) -> int:
    import helm_sdkpy

    print(f"==> Linting {args.chart}")
    config = helm_sdkpy.Configuration(namespace=args.namespace)
    result = asyncio.run(helm_sdkpy.Lint(config).run(args.chart))
    failed = False
    for message in result.get("Messages") or []:
        severity = message.get("Severity", 0)
        text = message.get("Err") or {}
        text = text if isinstance(text, str) else "(helm-sdkpy passes on no message text)"
        print(f"[{SEVERITY.get(severity, severity)}] {message.get('Path')}: {text}")
        failed |= severity >= 3 or (args.strict and severity >= 2)
    # Render too: that shows the text of template errors, and checks the given values.
    try:
        render(args, "lint", user_values(args))
    except helm_sdkpy.HelmError as err:
        print(f"[ERROR] render: {err}")
        failed = True
    print(f"\n1 chart(s) linted, {int(failed)} chart(s) failed")
    return 1 if failed else 0


def cluster_config(args: argparse.Namespace) -> Any:
    import helm_sdkpy

    return helm_sdkpy.Configuration(
        namespace=args.namespace, kubeconfig=os.environ.get("KUBECONFIG") or None
    )


def cmd_install(args: argparse.Namespace) -> int:
    import helm_sdkpy

    install = helm_sdkpy.Install(cluster_config(args))
    try:
        release = asyncio.run(
            install.run(
                args.name,
                args.chart,
                values=user_values(args) or None,
                create_namespace=args.create_namespace,
                wait=args.wait,
                timeout=args.timeout,
            )
        )
    except helm_sdkpy.HelmError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    info = release.get("info", {})
    print(f"NAME: {release.get('name')}")
    print(f"NAMESPACE: {release.get('namespace')}")
    print(f"STATUS: {info.get('status')}")
    print(f"REVISION: {release.get('version')}")
    if info.get("notes"):
        print(f"NOTES:\n{info['notes']}")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    import helm_sdkpy

    uninstall = helm_sdkpy.Uninstall(cluster_config(args))
    try:
        asyncio.run(uninstall.run(args.name, wait=args.wait, timeout=args.timeout))
    except helm_sdkpy.HelmError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    print(f'release "{args.name}" uninstalled')
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="helm.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True)

    def values_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", action="append", metavar="K=V", help="like helm --set")
        p.add_argument("--set-string", action="append", metavar="K=V", help="values as strings")
        p.add_argument("-f", "--values", action="append", metavar="FILE", help="values file (YAML)")

    def render_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kube-version", default="1.20.2", help="of the stub API server")
        p.add_argument(
            "--api-versions",
            action="append",
            metavar="G/V[/Kind]",
            help="an API the stub API server also serves (.Capabilities.APIVersions)",
        )

    lint = commands.add_parser("lint", help="helm lint, and a render with the given values")
    lint.add_argument("chart")
    lint.add_argument("--strict", action="store_true", help="fail on warnings too")
    lint.add_argument("--namespace", "-n", default="default")
    values_options(lint)
    render_options(lint)
    lint.set_defaults(run=cmd_lint, isolated=True)

    for name, run, what in (
        ("template", cmd_template, "print the rendered manifests"),
        ("notes", cmd_notes, "print the rendered NOTES.txt"),
    ):
        p = commands.add_parser(name, help=what)
        p.add_argument("name")
        p.add_argument("chart")
        p.add_argument("--namespace", "-n", default="default")
        if name == "template":
            p.add_argument("--include-crds", action="store_true", help="print crds/ first")
        values_options(p)
        render_options(p)
        p.set_defaults(run=run, isolated=True)

    install = commands.add_parser("install", help="install into the KUBECONFIG cluster")
    install.add_argument("name")
    install.add_argument("chart")
    install.add_argument("--namespace", "-n", required=True)
    install.add_argument("--create-namespace", action="store_true")
    install.add_argument("--wait", action="store_true", help="until the objects are ready")
    install.add_argument("--timeout", type=int, default=300, metavar="SECONDS")
    values_options(install)
    install.set_defaults(run=cmd_install, isolated=False)

    uninstall = commands.add_parser("uninstall", help="uninstall from the KUBECONFIG cluster")
    uninstall.add_argument("name")
    uninstall.add_argument("--namespace", "-n", required=True)
    uninstall.add_argument("--wait", action="store_true", help="until the objects are gone")
    uninstall.add_argument("--timeout", type=int, default=300, metavar="SECONDS")
    uninstall.set_defaults(run=cmd_uninstall, isolated=False)
    return top


def main() -> int:
    args = parser().parse_args()
    enter_venv()
    if args.isolated:
        isolate_helm_home()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
