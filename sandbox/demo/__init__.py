"""The demo: the programs in policies/, the institutions of the demo brief, a user of every role,
and a history of applications and pilots in a spread of states, built through the same services
as real use, each step at its own date."""
