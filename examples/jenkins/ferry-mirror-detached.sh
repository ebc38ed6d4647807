#!/bin/sh
# What the ferry provider starts for each ferry_mirror worker when Terraform runs under Jenkins
# (launcher.local.binary points here; see Jenkinsfile).
#
# Jenkins kills the processes that carry its cookies in their environment when a build ends or a
# step is aborted. The workers must outlive the build, so they get values of their own. The
# passwords the pipeline hands to Terraform through the environment are dropped: the workers read
# theirs from the 0600 files in the run directory.
#
# Keep "ferry-mirror" in this file's name and in FERRY_MIRROR_REAL: the provider recognises its
# workers by it.
JENKINS_NODE_COOKIE=ferry-mirror-worker
JENKINS_SERVER_COOKIE=ferry-mirror-worker
BUILD_ID=ferry-mirror-worker
export JENKINS_NODE_COOKIE JENKINS_SERVER_COOKIE BUILD_ID
unset FERRY_KAFKA_SASL_PASSWORD TF_VAR_source_sasl_password TF_VAR_target_sasl_password
exec "${FERRY_MIRROR_REAL:-ferry-mirror}" "$@"
