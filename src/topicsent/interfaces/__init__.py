"""Ways in: the command line and the REST service (``topicsent serve``).

The table printer behind every CLI listing is public, so scripts (``benchmarks/``)
print the same tables.
"""

from topicsent.interfaces._tables import Col, ResultTable, TableFormat, printer
from topicsent.interfaces._topics_cli import topic_table

__all__ = ["Col", "ResultTable", "TableFormat", "printer", "topic_table"]
