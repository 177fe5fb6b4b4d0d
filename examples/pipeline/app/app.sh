#!/bin/sh
echo "secure-app ready"
