"""What every other package shares and none owns: a user's mistake as one line (errors), the
command-line wrapper and the local Prefect server (cli, local_server), retries (retry),
progress, logging (logs) and the AWS client factory (aws). It imports no other package of
tasks/."""
