-- Plays by free and paid users, with the number of distinct users at each level.
select level, count(*) as plays, count(distinct user_id) as users
from songplays
group by level
order by level asc nulls last
