"""``ssm.session_manager``: from bastion and SSH to Session Manager."""
