"""Running a job off this machine: packaging, staging to S3, EMR steps, EMR Serverless runs."""
