"""Answer stage: one turn (question -> passages -> Answer, streamed or not), prompting, conversation rewriting,
grounding and citation checks, and the generator backends."""
