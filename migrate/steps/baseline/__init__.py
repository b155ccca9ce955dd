"""``ftr.account_baseline``: the account-level FTR requirements (passwords, contacts, root, BPA, EBS, TLS)."""
