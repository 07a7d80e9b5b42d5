"""Events into the catalog: the consumer, the applier, the publisher, the node that runs
them, and the link that publishes served datasets. Readable without FastAPI.
"""
