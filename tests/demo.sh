#!/usr/bin/env bash
# The local demo: starts Kafka on loopback, applies examples/topics with the freshly built
# provider through a real Terraform CLI, and shows what Kafka now holds.
#   FERRY_CLI=tofu tests/demo.sh     # the same with OpenTofu
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
tests/peers/start.sh a b
# shellcheck disable=SC1091
source .peers/env

cli_name="${FERRY_CLI:-terraform}"
cli="$FERRY_TERRAFORM"
[ "$cli_name" = tofu ] && cli="$FERRY_TOFU"

work="$REPO/.peers/demo"
rm -rf "$work" && mkdir -p "$work"
export TF_CLI_CONFIG_FILE="$(tests/tools/cli-config.sh "$work")"
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
cp examples/topics/main.tf "$work/"
cat > "$work/terraform.tfvars.json" <<JSON
{ "bootstrap_servers": ["$FERRY_KAFKA_A"], "prefix": "demo-" }
JSON

cd "$work"
echo "== $cli_name init"
"$cli" init -no-color -input=false | tail -n 3
echo "== $cli_name apply"
"$cli" apply -auto-approve -no-color -input=false
echo "== what Kafka at $FERRY_KAFKA_A now holds"
"$FERRY_PEERS_PYTHON" "$REPO/tests/tools/show_topics.py" "$FERRY_KAFKA_A" demo-
echo "== a second plan (expect no changes)"
"$cli" plan -no-color -input=false | tail -n 2

echo "== examples/quickstart: mirror demo-orders and demo-customers from $FERRY_KAFKA_A to $FERRY_KAFKA_B"
"$FERRY_PEERS_PYTHON" "$REPO/tests/tools/fill_topics.py" "$FERRY_KAFKA_A" demo-billing demo-orders,demo-customers
mirror="$work/quickstart"
mkdir -p "$mirror" && cp "$REPO/examples/quickstart/main.tf" "$mirror/"
cat > "$mirror/terraform.tfvars.json" <<JSON
{ "source_servers": ["$FERRY_KAFKA_A"], "target_servers": ["$FERRY_KAFKA_B"],
  "topics": ["demo-orders", "demo-customers"],
  "ferry_mirror_binary": "$REPO/target/debug/ferry-mirror", "state_dir": "$mirror/.ferry" }
JSON
cd "$mirror"
"$cli" init -no-color -input=false | tail -n 1
TF_LOG=INFO TF_LOG_PATH="$mirror/apply.log" "$cli" apply -auto-approve -no-color -input=false
echo "== progress the provider logged while waiting (TF_LOG=INFO)"
grep -o 'ferry_mirror: .*records copied[^:]*' "$mirror/apply.log" | tail -n 3 || true
echo "== what Kafka at $FERRY_KAFKA_B now holds"
"$FERRY_PEERS_PYTHON" "$REPO/tests/tools/show_topics.py" "$FERRY_KAFKA_B" demo-
cat <<DONE

The demo's Terraform directories are $work and $mirror (TF_CLI_CONFIG_FILE=$TF_CLI_CONFIG_FILE).
Kafka keeps running: 'make stop-peers' stops it ('terraform destroy' in each directory first if you
want to undo).
DONE
