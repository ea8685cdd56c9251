"""What the product computes: the article's preparation, the schemas, the prompts, the LLM client, the steps and the
plain-Python pipeline. No Prompt flow import, and nothing of the server, store or evaluation."""
