"""The command line: typer commands that parse options, call one service function, render the result
and map it to an exit status. Nothing here holds business logic, and nothing imports boto3, locust,
sagemaker or the local cloud at start-up: commands import their service inside the function body."""
