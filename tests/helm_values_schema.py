"""The part of the official Dagster chart's values schema that deploy/helm/values.yaml touches, as JSON Schema.

Written for these tests from the chart's `values.schema.json` (dagster-io/dagster, helm/dagster, the 1.x chart
with `dagsterWebserver`, `K8sRunLauncher`, `concurrency`): key names, types and enums only. The chart's file is
not vendored here. Two differences, both on purpose:
- no `required`: Helm validates the values merged onto the chart's defaults, which supply the rest;
- unknown keys are refused in every object we write (the chart ignores some silently), so a misspelt key fails.
Kubernetes-typed parts (volumes, env, security contexts) are checked against the Kubernetes schemas instead,
inside a Pod (tests/test_deploy_static.py).
"""

STR, INT, BOOL, OBJ, ARR = ({"type": t} for t in ("string", "integer", "boolean", "object", "array"))
PULL = {"enum": ["Always", "IfNotPresent", "Never"]}
NAMED = {"type": "array", "items": {"type": "object", "properties": {"name": STR}, "required": ["name"],
                                    "additionalProperties": False}}


def closed(**properties) -> dict:
    return {"type": "object", "properties": properties, "additionalProperties": False}


IMAGE = closed(repository=STR, tag={"type": ["string", "integer", "null"]}, pullPolicy=PULL)

USER_DEPLOYMENT = closed(
    name=STR, image=IMAGE, dagsterApiGrpcArgs={"type": "array", "items": STR},
    codeServerArgs={"type": "array", "items": STR}, includeConfigInLaunchedRuns=closed(enabled=BOOL),
    deploymentNamespace=STR, port=INT, env={"type": ["object", "array"]}, envConfigMaps=NAMED, envSecrets=NAMED,
    annotations=OBJ, nodeSelector=OBJ, affinity=OBJ, tolerations=ARR, podSecurityContext=OBJ, securityContext=OBJ,
    resources=OBJ, livenessProbe=OBJ, readinessProbe=OBJ, startupProbe=OBJ, labels=OBJ, volumeMounts=ARR,
    volumes=ARR, schedulerName=STR, initContainers=ARR, sidecarContainers=ARR)

K8S_RUN_LAUNCHER = closed(
    image={"type": ["object", "null"]}, imagePullPolicy=PULL, jobNamespace={"type": ["string", "null"]},
    loadInclusterConfig=BOOL, kubeconfigFile={"type": ["string", "null"]}, envConfigMaps=NAMED, envSecrets=NAMED,
    envVars={"type": "array", "items": STR}, volumeMounts=ARR, volumes=ARR, labels={"type": ["object", "null"]},
    failPodOnRunFailure={"type": ["boolean", "null"]}, resources={"type": ["object", "null"]},
    schedulerName={"type": ["string", "null"]}, securityContext={"type": ["object", "null"]},
    runK8sConfig=closed(containerConfig=OBJ, podSpecConfig=OBJ, podTemplateSpecMetadata=OBJ, jobSpecConfig=OBJ,
                        jobMetadata=OBJ))

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    # Top-level keys of the chart (DagsterHelmValues); their sub-keys are checked below where we set them.
    "propertyNames": {"enum": [
        "dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
        "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
        "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
        "telemetry", "serviceAccount", "global", "retention", "concurrency", "additionalInstanceConfig"]},
    "properties": {
        "global": closed(postgresqlSecretName=STR, dagsterHome=STR, serviceAccountName=STR,
                         celeryConfigSecretName=STR),
        "generatePostgresqlPasswordSecret": BOOL,
        "postgresql": closed(image=OBJ, enabled=BOOL, postgresqlHost=STR, postgresqlUsername=STR,
                             postgresqlPassword=STR, postgresqlDatabase=STR, postgresqlParams=OBJ,
                             postgresqlScheme=STR, service=closed(port=INT)),
        "dagster-user-deployments": closed(enabled=BOOL, enableSubchart=BOOL, imagePullSecrets=ARR,
                                           deployments={"type": "array", "items": USER_DEPLOYMENT}),
        "runLauncher": {**closed(type={"enum": ["CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"]},
                                 config=closed(k8sRunLauncher=K8S_RUN_LAUNCHER,
                                               celeryK8sRunLauncher={"type": ["object", "null"]},
                                               customRunLauncher={"type": ["object", "null"]})),
                        "if": {"properties": {"type": {"const": "K8sRunLauncher"}}},
                        "then": {"properties": {"config": {"required": ["k8sRunLauncher"]}}}},
        "concurrency": closed(enabled=BOOL,
                              pools=closed(defaultLimit={"type": ["integer", "null"]},
                                           granularity={"enum": ["run", "op", None]},
                                           opGranularityRunBuffer={"type": ["integer", "null"]}),
                              runs=closed(maxConcurrentRuns={"type": ["integer", "null"]}, tagConcurrencyLimits=ARR)),
        "telemetry": closed(enabled=BOOL),
    },
}
