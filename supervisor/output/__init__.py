"""Bot output: rotating log files and reading them back (`supctl logs`)."""
