"""The provider binary outside Terraform."""

import subprocess


def test_run_by_hand_explains_itself_and_fails(provider_binary):
    proc = subprocess.run([str(provider_binary)], capture_output=True, text=True, timeout=30, env={})
    assert proc.returncode != 0
    assert "plugin for Terraform" in proc.stderr
    assert proc.stdout == "", "nothing may reach stdout before a handshake"


def test_refuses_a_client_without_protocol_6(provider_binary):
    env = {
        "TF_PLUGIN_MAGIC_COOKIE": "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
        "PLUGIN_PROTOCOL_VERSIONS": "4,5",
    }
    proc = subprocess.run([str(provider_binary)], capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode != 0
    assert "protocol 6" in proc.stderr
