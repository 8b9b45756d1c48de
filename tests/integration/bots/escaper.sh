# Leaves its process group two ways and prints both pids: setsid in the background (the issue's
# `sh -c "setsid sleep 998 & sleep 1000"`), and a double fork whose middle process exits at once.
setsid sleep 998 &
echo "setsid=$!"
( setsid sh -c 'echo "doublefork=$$"; exec sleep 997' & )
sleep 1000
