# The model service: `mlops-nb serve` on port 8080, following models:/$MLOPS_NB_MODEL_NAME@champion.
# Build:  docker build -t mlops-nb-serve .
# Run:    docker run -p 8080:8080 -e MLFLOW_TRACKING_URI=postgresql://user@db/mlflow -e MLOPS_NB_MODEL_NAME=NAME \
#                    -e MLOPS_NB_API_KEY=... -v $PWD/workspace:/app/workspace mlops-nb-serve
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 MLOPS_NB_WORKSPACE=/app/workspace
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY mlops_nb ./mlops_nb
# mlops_nb/pipelines links to nbs/pipelines (the pipeline notebooks ship in the package)
COPY nbs/pipelines ./nbs/pipelines
RUN pip install -c constraints.txt . && useradd --create-home --uid 10001 app && mkdir -p /app/workspace && chown app /app/workspace
USER app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ready')"
# exec form: uvicorn gets SIGTERM directly and drains the prediction log before exiting
ENTRYPOINT ["mlops-nb", "serve", "--host", "0.0.0.0", "--port", "8080"]
