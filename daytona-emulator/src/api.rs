//! Control-plane routes. (Skeleton: the control-plane helper fills it in.)
