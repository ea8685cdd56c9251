"""Azure ML deployment of News Reader: the endpoint and deployment definitions (YAML beside this file), the
blue/green rollout and the monitoring. Run `python -m deployment.azureml --help`."""

from pathlib import Path

DEFINITIONS = Path(__file__).resolve().parent
REPO = DEFINITIONS.parents[1]
