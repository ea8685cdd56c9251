"""The GitHub workflows: actionlint finds nothing in them, and they do what the deployment issue asks. CI checks pull
requests; CD evaluates in Azure ML, gates, then deploys to dev and, once approved, to prod; Azure sign-in is OIDC."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
GITHUB = REPO / ".github"
ACTIONLINT = Path(sys.executable).with_name("actionlint")
DEPLOY = "./.github/workflows/deploy.yml"
AZURE_LOGIN_INPUTS = {"client-id": "${{ vars.AZURE_CLIENT_ID }}", "tenant-id": "${{ vars.AZURE_TENANT_ID }}",
                      "subscription-id": "${{ vars.AZURE_SUBSCRIPTION_ID }}"}


def actionlint(project: Path) -> subprocess.CompletedProcess:
    """actionlint over the project's workflows, and through them its local actions and reusable workflows.
    shellcheck and pyflakes are off, so that the result does not depend on what else is installed."""
    return subprocess.run([ACTIONLINT, "-oneline", "-no-color", "-shellcheck=", "-pyflakes="], cwd=project,
                          capture_output=True, text=True, timeout=120)


def workflow(name: str) -> dict:
    data = yaml.safe_load((GITHUB / "workflows" / name).read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as true
    return data


def steps(job: dict) -> list[dict]:
    """A job's steps, with the steps of the local composite actions it uses in their place."""
    found = []
    for step in job.get("steps", []):
        found.append(step)
        if step.get("uses", "").startswith("./.github/actions/"):
            found += steps(yaml.safe_load((REPO / step["uses"] / "action.yml").read_text())["runs"])
    return found


def commands(job: dict) -> list[str]:
    return [step["run"] for step in steps(job) if "run" in step]


def needs(jobs: dict, name: str) -> set[str]:
    """Every job `name` waits for, directly or not."""
    direct = jobs[name].get("needs", [])
    direct = [direct] if isinstance(direct, str) else direct
    return set(direct).union(*(needs(jobs, job) for job in direct))


def deploy_jobs() -> dict[str, dict]:
    return {name: job for name, job in workflow("cd.yml")["jobs"].items() if job.get("uses") == DEPLOY}


def make_recipe(target: str) -> str:
    recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert recipe, f"the Makefile has no recipe for {target}"
    return recipe.group(1)


def make_targets() -> set[str]:
    """Targets as make sees them, variables expanded: its database, printed without running anything."""
    database = subprocess.run(["make", "-pRrq", ":"], cwd=REPO, capture_output=True, text=True, timeout=60).stdout
    return set(re.findall(r"^([\w./-]+):", database, re.MULTILINE))


def github_files() -> list[Path]:
    return sorted(GITHUB.rglob("*.yml"))


def every_command() -> list[str]:
    return [command for path in sorted((GITHUB / "workflows").glob("*.yml"))
            for job in workflow(path.name)["jobs"].values() for command in commands(job)]


def test_actionlint_finds_nothing_in_the_workflows():
    result = actionlint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("file", "good", "bad", "finding"), [
    ("workflows/cd.yml", "needs: evaluate", "needs: evaluat", "needs job \"evaluat\" which does not exist"),
    ("workflows/deploy.yml", "${{ vars.AZURE_CLIENT_ID }}", "${{ var.AZURE_CLIENT_ID }}", "undefined variable \"var\""),
    ("workflows/cd.yml", "environment: prod", "environmen: prod", "input \"environmen\" is not defined"),
], ids=["unknown-needs", "bad-expression", "unknown-reusable-workflow-input"])
def test_actionlint_fails_on_a_broken_copy(tmp_path, file, good, bad, finding):
    shutil.copytree(GITHUB, tmp_path / ".github")
    (tmp_path / ".git").mkdir()  # actionlint looks for the project's root
    broken = tmp_path / ".github" / file
    assert good in broken.read_text()
    broken.write_text(broken.read_text().replace(good, bad))
    result = actionlint(tmp_path)
    assert result.returncode == 1 and finding in result.stdout


def test_ci_runs_on_pull_requests():
    assert "pull_request" in workflow("ci.yml")["on"]


def test_ci_lints_validates_every_flow_and_runs_the_tests_and_the_smoke_gate_once():
    assert commands(workflow("ci.yml")["jobs"]["test"]) == [
        "make .venv/.installed .state/llama.cpp/bin/llama-server", "make lint", "make validate", "make test"]
    assert "pytest" in make_recipe("test") and "gate DATA=smoke" in make_recipe("test")


def test_make_validate_runs_pf_flow_validate_on_every_flow():
    flows = {str(dag.parent.relative_to(REPO)) for folder in ("flows", "evaluations")
             for dag in (REPO / folder).rglob("flow.dag.yaml")}
    recipe = make_recipe("validate")
    assert "pf flow validate --source" in recipe
    assert flows and all(flow in recipe for flow in flows)


def test_ci_cancels_a_pull_request_run_that_a_newer_push_makes_stale():
    concurrency = workflow("ci.yml")["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_ci_may_only_read_the_repository():
    assert workflow("ci.yml")["permissions"] == {"contents": "read"}


def test_llama_server_and_the_pip_cache_are_cached_by_what_builds_them():
    cached = {step["with"]["path"]: step["with"]["key"] for step in steps(workflow("ci.yml")["jobs"]["test"])
              if step.get("uses", "").startswith(("actions/cache@", "actions/cache/restore@"))}
    assert set(cached) == {".state/llama.cpp/bin", ".state/pip-cache"}
    assert "hashFiles('deployment/llama-server/*')" in cached[".state/llama.cpp/bin"]
    assert "hashFiles('requirements.txt', 'requirements-dev.txt', 'constraints.txt')" in cached[".state/pip-cache"]


def test_cd_runs_on_main_and_by_hand():
    assert workflow("cd.yml")["on"] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}


def test_cd_and_deploy_may_request_an_oidc_token_and_read_the_repository():
    for name in ("cd.yml", "deploy.yml"):
        assert workflow(name)["permissions"] == {"id-token": "write", "contents": "read"}


def test_every_azure_sign_in_is_oidc_with_the_environment_variables():
    jobs = [workflow("cd.yml")["jobs"]["evaluate"], workflow("deploy.yml")["jobs"]["deploy"]]
    for job in jobs:
        [login] = [step for step in steps(job) if step.get("uses", "").startswith("azure/login@")]
        assert login["with"] == AZURE_LOGIN_INPUTS


def test_the_only_secret_a_workflow_reads_is_the_deployments_database_url():
    """Azure sign-in is OIDC; the PostgreSQL URL with its password is the one stored secret."""
    read = {name for path in github_files() for name in re.findall(r"secrets\.(\w+)", path.read_text())}
    assert read == {"NEWS_READER_DATABASE_URL"}


def test_cd_evaluates_the_labelled_set_in_azure_ml_and_gates_it_on_the_full_thresholds():
    evaluate = workflow("cd.yml")["jobs"]["evaluate"]
    assert evaluate["environment"] == "dev"
    assert "make gate-azure DATA=full" in commands(evaluate)
    recipe = make_recipe("gate-azure")
    assert "run_experiment.py --azure" in recipe and "news-reader eval gate" in recipe


def test_cd_keeps_the_evaluation_record_as_an_artifact():
    [upload] = [step for step in steps(workflow("cd.yml")["jobs"]["evaluate"])
                if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == ".state/experiments/gate-azure-full/"


def test_deployment_waits_for_the_gate_and_never_runs_after_it_failed():
    jobs = workflow("cd.yml")["jobs"]
    assert set(deploy_jobs()) == {"deploy-dev", "deploy-prod"}
    for name in deploy_jobs():
        assert "evaluate" in needs(jobs, name)
        assert all("if" not in jobs[job] for job in needs(jobs, name) | {name}), "a condition can skip the gate"
    assert "if" not in workflow("deploy.yml")["jobs"]["deploy"]


def test_prod_is_deployed_after_dev_in_the_prod_environment():
    jobs = deploy_jobs()
    assert jobs["deploy-dev"]["with"]["environment"] == "dev"
    assert jobs["deploy-prod"]["with"]["environment"] == "prod" and jobs["deploy-prod"]["needs"] == "deploy-dev"
    assert workflow("deploy.yml")["jobs"]["deploy"]["environment"] == "${{ inputs.environment }}"


def test_a_deployment_rolls_out_blue_green_then_sets_up_monitoring():
    run = [c for c in commands(workflow("deploy.yml")["jobs"]["deploy"]) if "deployment.azureml" in c]
    assert run == [".venv/bin/python -m deployment.azureml rollout --traffic-steps \"$TRAFFIC_STEPS\"",
                   ".venv/bin/python -m deployment.azureml monitor"]


def test_a_deployment_sets_what_the_deploy_commands_read_from_their_environment():
    from deployment.azureml.__main__ import main as deploy

    env = set(workflow("deploy.yml")["jobs"]["deploy"]["env"])
    read, required = set(), []
    for command in ("rollout", "monitor"):
        for option in deploy.commands[command].params:
            names = [option.envvar] if isinstance(option.envvar, str) else list(option.envvar or [])
            read.update(names)
            if option.required:
                required.append(names)
    assert all(env & set(names) for names in required), "a required setting is missing"
    assert env <= read, f"not read by the deploy commands: {env - read}"
    assert "NEWS_READER_ALERT_EMAILS" in env  # monitor refuses to run without somebody to alert


def test_every_make_target_the_workflows_run_exists():
    wanted = {target for command in every_command() for target in re.findall(r"\bmake ([\w./-]+)", command)}
    assert wanted and wanted <= make_targets()


def test_nothing_is_pip_installed_outside_the_makefile():
    for path in github_files():
        assert not re.search(r"\bpip3? install\b", path.read_text()), path


def test_every_action_is_pinned_to_a_commit_with_its_version_alongside():
    for path in github_files():
        for action, comment in re.findall(r"uses: ([^\s.][^\s]*)(.*)", path.read_text()):
            assert re.fullmatch(r"[\w-]+/[\w/-]+@[0-9a-f]{40}", action), f"{path}: {action}"
            assert re.fullmatch(r" # v\d+(\.\d+)*", comment), f"{path}: {action} has no version comment"
