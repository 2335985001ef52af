# Spectral Atlas served from a container: the stores are mounted at /data.
#
#   docker build -t spectral-atlas .
#   docker run --rm -p 5006:5006 -v /srv/atlas:/data:ro -e PANEL_COOKIE_SECRET=... \
#       -v /etc/spectral-atlas/users.json:/run/users.json:ro spectral-atlas \
#       spectral-atlas serve --data-root /data --address 0.0.0.0 --port 5006 \
#       --allow-websocket-origin atlas.example.org --basic-auth /run/users.json
#
# UNTESTED: written where no Docker engine runs (`docker info`: cannot connect to the daemon),
# so this image has never been built. See "Hosting" in README.md.
FROM python:3.11-slim

# Wheels bring their own libsndfile, HDF5 and FFT libraries; nothing is compiled here.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY data_access/ data_access/
COPY dashboard/ dashboard/
RUN pip install --no-cache-dir . \
    && useradd --system --uid 1000 --home-dir /home/atlas --create-home atlas

USER atlas
ENV NUMBA_CACHE_DIR=/home/atlas/.cache/numba \
    PYTHONUNBUFFERED=1
EXPOSE 5006
VOLUME ["/data"]

# The origin must be the host name browsers use: override the command for anything but localhost.
CMD ["spectral-atlas", "serve", "--data-root", "/data", "--address", "0.0.0.0", "--port", "5006", \
     "--allow-websocket-origin", "localhost:5006"]
