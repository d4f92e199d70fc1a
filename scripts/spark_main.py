"""The Spark operator's entry point into poiflow (the image keeps it at
/opt/poiflow/spark_main.py): ``spark_main.py run PIPELINE`` is ``poiflow run PIPELINE``,
with the Spark session that spark-submit set up (the pipeline's master left empty)."""

import sys

from poiflow.cli import main

if __name__ == "__main__":
    main(sys.argv[1:])
