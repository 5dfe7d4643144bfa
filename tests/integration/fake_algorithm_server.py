"""A stand-in algorithm service for runtime tests: health only, answers SERVING after a delay."""

import argparse
import signal
import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--name", default="manager.v1beta1.Suggestion")
parser.add_argument("--state-dir", default="")
args = parser.parse_args()

server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
servicer = health.HealthServicer()
servicer.set(args.name, health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port(f"127.0.0.1:{args.port}")
server.start()
if args.state_dir:
    with open(f"{args.state_dir}/started", "a") as f:
        f.write(f"{time.time()}\n")
signal.signal(signal.SIGTERM, lambda *_: (server.stop(0), sys.exit(0)))
server.wait_for_termination()
